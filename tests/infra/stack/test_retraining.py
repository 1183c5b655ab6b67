"""The retraining loop in the template: the schedule, the state machine (gather -> SageMaker training with this
repository's source -> judge), the training job's role, the data bucket, the alarm and the notice on failure."""

from __future__ import annotations

import json
import re
import tarfile

from aws_cdk.assertions import Match, Template

from infra import job_source
from infra.config import OUTPUT_DATA_BUCKET, OUTPUT_RETRAIN, ROOT, StackConfig
from tests.infra.stack.helpers import GTE, build_stack, permissions, ref_id


def definition(template: Template) -> dict:
    """The state machine's definition with CloudFormation's tokens flattened into placeholders."""
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"<{json.dumps(p, sort_keys=True)}>" for p in parts)
    return json.loads(re.sub(r"<(\{.*?\})>", lambda m: json.dumps(m.group(1))[1:-1], text))


def test_a_weekly_schedule_starts_the_state_machine(template, stack):
    """Scheduler's default cadence is a week; its target is the state machine, through a role that may only start
    it."""
    machine = ref_id(stack, stack.retraining.state_machine)
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(7 days)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": {"Ref": machine}, "RoleArn": Match.any_value()},
        },
    )
    outputs = template.to_json()["Outputs"]
    assert outputs[OUTPUT_RETRAIN]["Value"] == {"Ref": machine}
    assert outputs[OUTPUT_DATA_BUCKET]["Value"] == {"Ref": ref_id(stack, stack.retraining.data_bucket)}


def test_the_state_machine_gathers_trains_on_sagemaker_and_judges_and_a_failure_notifies(template, stack):
    states = definition(template)["States"]
    assert definition(template)["StartAt"] == "Gather"
    assert (
        states["AnythingNew?"]["Choices"][0]["Next"] == "Train" and states["AnythingNew?"]["Default"] == "NothingToDo"
    )
    train = states["Train"]
    assert train["Resource"].endswith(":sagemaker:createTrainingJob.sync")  # RUN_JOB: it waits for the job
    params = train["Parameters"]
    assert [c["ChannelName"] for c in params["InputDataConfig"]] == ["data", "events", "served"]
    assert params["ResourceConfig"] == {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    # JSON-encoded values, as the SageMaker SDK writes them; the source is the tarball asset
    assert json.loads(params["HyperParameters"]["sagemaker_program"]) == job_source.PROGRAM
    assert re.fullmatch(r'"\{"Fn::Sub": "s3://cdk-.*\.gz"\}"', params["HyperParameters"]["sagemaker_submit_directory"])
    assert "tensorflow-training" in params["AlgorithmSpecification"]["TrainingImage"]
    assert train["Next"] == "Judge" and states["Judge"]["Next"] == "Published?"
    ends = {c["StringEquals"]: c["Next"] for c in states["Published?"]["Choices"]}
    assert ends == {"published": "Published", "experiment": "ExperimentStarted"}
    assert states["Published?"]["Default"] == "StoppedByTheGate"
    for step in ("Gather", "Train", "Judge"):
        (catch,) = states[step]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "Notify"
    assert states["Notify"]["Resource"].endswith(":sns:publish") and states["Notify"]["Next"] == "Failed"
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_a_failed_run_alarms_on_the_alerts_topic(template, stack):
    topic = ref_id(stack, stack.retraining.alerts)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Metrics": Match.array_with([Match.object_like({"Expression": "failed + timedout + aborted"})]),
            "Threshold": 1,
            "ComparisonOperator": GTE,
            "AlarmActions": [{"Ref": topic}],
        },
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": "alias/aws/sns"})


def test_the_training_job_reads_and_writes_only_its_prefixes(template, stack):
    """No s3 action on "*": the task's run-time S3 paths would have made CDK add them (the task gets an immutable
    reference to the role)."""
    role = ref_id(stack, stack.retraining.job_role)
    granted = permissions(template, role)
    star = json.dumps("*")
    assert {a for a, on in granted.items() if star in on} == {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
    data = ref_id(stack, stack.retraining.data_bucket)
    reads = " ".join(granted["s3:GetObject*"])
    assert f"{data}" in reads and "/data/base/*" in reads and "/data/runs/*" in reads and "/models/*" in reads
    assert {json.loads(r)["Fn::Join"][1][-1] for r in granted["s3:PutObject"]} == {"/data/runs/*"}
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})]}
            )
        },
    )


def test_the_steps_are_configured_from_the_context(outdir, fake_artifact):
    """Cadence, instance type and the gate are context values; retrain=false leaves the loop out."""
    _, stack = build_stack(
        outdir / "retrain-options",
        fake_artifact,
        retrain_schedule="cron(0 3 ? * MON *)",
        retrain_instance_type="ml.g5.xlarge",
        gate_ndcg_margin="0.01",
        **{"aws:cdk:bundling-stacks": []},
    )
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "cron(0 3 ? * MON *)"})
    assert definition(template)["States"]["Train"]["Parameters"]["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    start = template.to_json()["Resources"][ref_id(stack, stack.retraining.start.function)]
    env = start["Properties"]["Environment"]["Variables"]
    assert env["GATE_NDCG_MARGIN"] == "0.01" and env["HOLDOUT_SHARE"] == "0.2" and "DATA_BUCKET" in env
    _, without = build_stack(outdir / "no-retrain", fake_artifact, retrain="false", **{"aws:cdk:bundling-stacks": []})
    plain = Template.from_stack(without)
    plain.resource_count_is("AWS::StepFunctions::StateMachine", 0)
    plain.resource_count_is("AWS::Scheduler::Schedule", 0)


def test_bad_retraining_context_is_refused():
    import pytest

    from infra.config import ConfigError

    for bad, says in (
        ({"retrain_schedule": "weekly"}, "retrain_schedule"),
        ({"retrain_instance_type": "m5.xlarge"}, "ml.*"),
        ({"retrain_image": "tensorflow:latest"}, "ECR image URI"),
        ({"gate_ndcg_margin": "-1"}, "margins"),
    ):
        with pytest.raises(ConfigError, match=re.escape(says)):
            StackConfig.from_mapping(bad)


def test_the_jobs_source_tarball_holds_what_the_job_imports_and_its_requirements(tmp_path):
    """The tarball SageMaker unpacks: the entry point, the packages, and requirements-job.txt as requirements.txt,
    whose pins match requirements.txt's (one version of each library here and in the job)."""
    path = job_source.build(tmp_path / "src.tar.gz")
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert {job_source.PROGRAM, "training/train.py", "model_export/holdout.py", "lambdas/engine/engine.py"} <= names
    assert not any(n.startswith(("lambdas/api", "lambdas/service", "infra", "tests")) for n in names)
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    job = dict(line.split("==") for line in requirements.splitlines() if "==" in line)
    assert job and all(pins.get(name) == version for name, version in job.items()), job
    assert "tensorflow-cpu" not in job  # the image's own TensorFlow
