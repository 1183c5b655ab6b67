"""The retraining loop in AWS: a schedule (EventBridge Scheduler) starts a Step Functions state machine that gathers
the training data (a function: base data + every stored event, forgotten users out, the newest held out), trains
and exports on SageMaker Training (this repository's source as a tarball asset on a prebuilt TensorFlow image: no
Docker at deploy), and puts the candidate through the gate (a function: publish or stop). A failed step notifies
the alerts topic and leaves the served model untouched; two runs never overlap (the first step of a second one sees
the first still running and stops).

The decisions are plain modules (``lambdas.loop``) that ``python -m infra.retrain --local`` calls too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import checkov
from infra.constructs.function import FunctionProps, PythonFunction
from infra.constructs.model_store import ModelStore
from infra.constructs.results_table import EventsTable
from infra.job_source import PROGRAM
from infra.nag import acknowledge, logical_id
from lambdas.loop.layout import Layout

START_HANDLER = "lambdas.retrain.handler.start_handler"
FINISH_HANDLER = "lambdas.retrain.handler.finish_handler"
# Run folders (events, held-out events, the job's output, the decision) are kept this long, for a look afterwards.
RUN_DAYS = 30


@dataclass(frozen=True)
class RetrainingProps:
    """What the loop needs: the functions' code and settings, the tables and buckets, the job's shape."""

    code: lambda_.Code
    architecture: str
    environment: Mapping[str, str]
    log_retention: logs.RetentionDays
    events: EventsTable
    model_store: ModelStore
    job_source: Path  # the tarball infra.job_source builds
    schedule: str  # an EventBridge Scheduler expression: rate(7 days), cron(0 3 ? * MON *), ...
    instance_type: str  # ml.m5.xlarge
    training_image: str  # the prebuilt SageMaker TensorFlow training image's URI
    max_runtime_h: int
    volume_gb: int
    hyperparameters: Mapping[str, object]  # training.train settings (none: the served configuration)
    alarm_topic_arn: str | None
    retain_data: bool
    data_prefix: str = Layout().prefix


class Retraining(Construct):
    """``data_bucket``, ``state_machine``, ``schedule``, ``job_role``, ``alerts`` and the two step functions."""

    def __init__(self, scope: Construct, id: str, *, props: RetrainingProps) -> None:
        super().__init__(scope, id)
        self.props = p = props
        stack = cdk.Stack.of(self)
        layout = Layout(p.data_prefix)
        removal = cdk.RemovalPolicy.RETAIN if p.retain_data else cdk.RemovalPolicy.DESTROY
        self.data_bucket = s3.Bucket(
            self,
            "DataBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=p.model_store.access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                # A replaced base version (a forgotten user rewritten out of it) and a deleted run go a day later.
                s3.LifecycleRule(
                    id="expire-noncurrent-soon",
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="expire-runs", prefix=f"{p.data_prefix}runs/", expiration=cdk.Duration.days(RUN_DAYS)
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=not p.retain_data,
        )

        if p.alarm_topic_arn:
            self.alerts: sns.ITopic = sns.Topic.from_topic_arn(self, "Alerts", p.alarm_topic_arn)
        else:
            topic = sns.Topic(self, "Alerts", display_name="Recommender retraining", enforce_ssl=True)
            # AWS-managed key: encrypted at rest with no key policy of ours (the alarms and the state machine publish).
            topic.node.default_child.kms_master_key_id = "alias/aws/sns"  # type: ignore[union-attr]
            self.alerts = topic

        env = {**p.environment, "DATA_BUCKET": self.data_bucket.bucket_name, "DATA_PREFIX": p.data_prefix}
        self.start = PythonFunction(
            self,
            "Start",
            props=FunctionProps(
                code=p.code,
                handler=START_HANDLER,
                memory_mb=2048,
                timeout_s=900,
                architecture=p.architecture,
                environment=env | {"POWERTOOLS_SERVICE_NAME": "recommender-retrain"},
                log_retention=p.log_retention,
                description="Retraining, step 1: gathers the base data and every stored event, holds the newest out",
                ephemeral_storage_mb=4096,  # a base data rewrite streams through /tmp (ml-25m: 650 MB)
            ),
        )
        self.finish = PythonFunction(
            self,
            "Finish",
            props=FunctionProps(
                code=p.code,
                handler=FINISH_HANDLER,
                memory_mb=1024,
                timeout_s=300,
                architecture=p.architecture,
                environment=env | {"POWERTOOLS_SERVICE_NAME": "recommender-retrain"},
                log_retention=p.log_retention,
                description="Retraining, step 3: the candidate through the gate, published only if it passes",
                ephemeral_storage_mb=2048,  # the job's model.tar.gz and the artifact unpacked from it
            ),
        )
        # start: one Scan of the events table, deletes of the tombstones it applied; the base data and run files.
        p.events.grant_table(self.start.role, "dynamodb:Scan", "dynamodb:DeleteItem")
        self.data_bucket.grant_read_write(self.start.role, f"{p.data_prefix}*")
        self.data_bucket.grant_delete(self.start.role, f"{layout.prefix}base/*")
        # the served model's manifest (its events_through) and which version is served
        iam.Grant.add_to_principal(
            grantee=self.start.role,
            actions=["s3:GetObject"],
            resource_arns=[p.model_store.bucket.arn_for_objects(f"{p.model_store.props.model_prefix}*/manifest.json")],
        )
        p.model_store.version_parameter.grant_read(self.start.role)
        # a running experiment decided at the start of a run (lambdas.loop.experiment): the outcome recorded in the
        # candidate's manifest, the parameter pointed at the winner
        iam.Grant.add_to_principal(
            grantee=self.start.role,
            actions=["s3:PutObject"],
            resource_arns=[p.model_store.bucket.arn_for_objects(f"{p.model_store.props.model_prefix}*/manifest.json")],
        )
        p.model_store.version_parameter.grant_write(self.start.role)
        # finish: the job's output and the decision; the candidate into the model store; the version switch.
        self.data_bucket.grant_read(self.finish.role, f"{p.data_prefix}runs/*")
        self.data_bucket.grant_put(self.finish.role, f"{p.data_prefix}runs/*")
        p.model_store.bucket.grant_put(self.finish.role, f"{p.model_store.props.model_prefix}*")
        p.model_store.version_parameter.grant_read(self.finish.role)
        p.model_store.version_parameter.grant_write(self.finish.role)

        source = s3_assets.Asset(self, "JobSource", path=str(p.job_source))
        self.job_role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        self.data_bucket.grant_read(self.job_role, f"{layout.prefix}base/*")
        self.data_bucket.grant_read(self.job_role, f"{p.data_prefix}runs/*")
        self.data_bucket.grant_put(self.job_role, f"{p.data_prefix}runs/*")
        p.model_store.bucket.grant_read(self.job_role, f"{p.model_store.props.model_prefix}*")
        source.grant_read(self.job_role)
        image_repository = cdk.Arn.format(
            cdk.ArnComponents(
                service="ecr",
                resource="repository",
                resource_name=p.training_image.split("/", 1)[1].split(":")[0],
                account=p.training_image.split(".")[0],
            ),
            stack,
        )
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[image_repository],
            )
        )
        self.job_role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/TrainingJobs:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
            )
        )

        self.state_machine = self._state_machine(p, source)
        # start lists the state machine's running executions (no overlap): a policy of its own, so that the
        # function does not wait on the state machine that names it.
        iam.Policy(
            self,
            "StartSeesRuns",
            roles=[self.start.role],
            statements=[
                iam.PolicyStatement(actions=["states:ListExecutions"], resources=[self.state_machine.state_machine_arn])
            ],
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.expression(p.schedule),
            target=targets.StepFunctionsStartExecution(self.state_machine),
            description="Retrain the recommender (python -m infra.retrain --stack NAME starts a run now)",
        )
        failed = cw.MathExpression(
            expression="failed + timedout + aborted",
            using_metrics={
                "failed": self.state_machine.metric_failed(statistic="Sum"),
                "timedout": self.state_machine.metric_timed_out(statistic="Sum"),
                "aborted": self.state_machine.metric_aborted(statistic="Sum"),
            },
            period=cdk.Duration.minutes(5),
            label="Retraining runs that did not finish",
        )
        self.alarm = failed.create_alarm(
            self,
            "RunFailed",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description="A retraining run failed, timed out or was stopped; the served model is unchanged. "
            "The state machine's execution and the training job's logs say why.",
        )
        self.alarm.add_alarm_action(cw_actions.SnsAction(self.alerts))
        self._acknowledge()

    def _state_machine(self, p: RetrainingProps, source: s3_assets.Asset) -> sfn.StateMachine:
        notify = tasks.SnsPublish(
            self,
            "Notify",
            topic=self.alerts,
            subject="Recommender retraining failed",
            message=sfn.TaskInput.from_object(
                {
                    "run": sfn.JsonPath.string_at("$$.Execution.Name"),
                    "error": sfn.JsonPath.string_at("$.failure.Error"),
                    "cause": sfn.JsonPath.string_at("$.failure.Cause"),
                    "served_model": "unchanged",
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify.next(sfn.Fail(self, "Failed", cause="a step failed; the served model is unchanged"))
        start = tasks.LambdaInvoke(
            self,
            "Gather",
            lambda_function=self.start.function,
            payload=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.string_at("$$.Execution.Id"),
                    "state_machine": sfn.JsonPath.string_at("$$.StateMachine.Id"),
                    "name": sfn.JsonPath.string_at("$$.Execution.Name"),
                }
            ),
            payload_response_only=True,
            result_path="$.run",
            retry_on_service_exceptions=True,
        )
        train = tasks.SageMakerCreateTrainingJob(
            self,
            "Train",
            training_job_name=sfn.JsonPath.string_at("$.run.job_name"),
            algorithm_specification=tasks.AlgorithmSpecification(
                training_image=tasks.DockerImage.from_registry(p.training_image),
                training_input_mode=tasks.InputMode.FILE,
            ),
            input_data_config=[
                tasks.Channel(
                    channel_name=name,
                    data_source=tasks.DataSource(
                        s3_data_source=tasks.S3DataSource(
                            s3_location=tasks.S3Location.from_json_expression(path),
                            s3_data_type=tasks.S3DataType.S3_PREFIX,
                        )
                    ),
                )
                for name, path in (
                    ("data", "$.run.channels.data"),
                    ("events", "$.run.channels.events"),
                    ("served", "$.run.job_served"),
                )
            ],
            output_data_config=tasks.OutputDataConfig(
                s3_output_location=tasks.S3Location.from_json_expression("$.run.output")
            ),
            resource_config=tasks.ResourceConfig(
                instance_count=1,
                instance_type=ec2.InstanceType(p.instance_type.removeprefix("ml.")),
                volume_size=cdk.Size.gibibytes(p.volume_gb),
            ),
            stopping_condition=tasks.StoppingCondition(max_runtime=cdk.Duration.hours(p.max_runtime_h)),
            # Every value JSON-encoded, as the SageMaker Python SDK writes them (the toolkit decodes them).
            hyperparameters={
                **{k: json.dumps(v) for k, v in p.hyperparameters.items()},
                "sagemaker_program": json.dumps(PROGRAM),
                "sagemaker_submit_directory": f'"{source.s3_object_url}"',
            },
            # An immutable reference: the task's S3 locations are run-time paths, for which CDK would add s3 reads
            # and writes on "*" to the role; the role's own grants above name the prefixes instead.
            role=iam.Role.from_role_arn(self, "JobRoleForTask", self.job_role.role_arn, mutable=False),
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_selector={"model_artifacts": sfn.JsonPath.string_at("$.ModelArtifacts.S3ModelArtifacts")},
            result_path="$.job",
        )
        finish = tasks.LambdaInvoke(
            self,
            "Judge",
            lambda_function=self.finish.function,
            payload=sfn.TaskInput.from_object(
                {
                    "run": sfn.JsonPath.object_at("$.run"),
                    "model_artifacts": sfn.JsonPath.string_at("$.job.model_artifacts"),
                }
            ),
            payload_response_only=True,
            result_path="$.outcome",
            retry_on_service_exceptions=True,
        )
        for step in (start, train, finish):
            step.add_catch(notify, result_path="$.failure")
        decided = (
            sfn.Choice(self, "Published?")
            .when(sfn.Condition.string_equals("$.outcome.action", "published"), sfn.Succeed(self, "Published"))
            # passed the gate and served to canary_share of users beside the served model (docs/experiments.md)
            .when(sfn.Condition.string_equals("$.outcome.action", "experiment"), sfn.Succeed(self, "ExperimentStarted"))
            .otherwise(sfn.Succeed(self, "StoppedByTheGate"))
        )
        definition = start.next(
            sfn.Choice(self, "AnythingNew?")
            .when(sfn.Condition.string_equals("$.run.action", "train"), train.next(finish).next(decided))
            .otherwise(sfn.Succeed(self, "NothingToDo"))
        )
        log_group = logs.LogGroup(self, "RunLogs", retention=p.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY)
        checkov.skip(log_group, "CKV_AWS_158", checkov.LOG_GROUP_KMS)
        return sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=cdk.Duration.hours(p.max_runtime_h + 1),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            comment="Gather -> train and export on SageMaker -> judge -> publish or stop",
        )

    def _acknowledge(self) -> None:
        """cdk-nag IAM5 findings, each named: the wildcards are key prefixes whose keys are made at run time (base
        versions, run folders, model versions are content hashes or run names) and the actions CDK's grants use."""
        p = self.props
        stack = cdk.Stack.of(self)
        data = f"<{logical_id(self.data_bucket.node.default_child)}.Arn>"
        models = f"<{logical_id(p.model_store.bucket.node.default_child)}.Arn>/{p.model_store.props.model_prefix}*"
        base, runs = f"Resource::{data}/{p.data_prefix}base/*", f"Resource::{data}/{p.data_prefix}runs/*"
        read = ["Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*"]
        qualifier = stack.node.try_get_context("@aws-cdk/core:bootstrapQualifier") or (
            cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
        )
        acknowledge(
            self.start.role,
            "AwsSolutions-IAM5",
            "The gather step reads and writes the data bucket's data/ prefix (base versions and run folders are "
            "named at run time; it deletes a base version a rewrite replaced) and reads each model version's "
            "manifest (versions are published after the deploy).",
            findings=[
                *read,
                "Action::s3:Abort*",
                "Action::s3:DeleteObject*",
                f"Resource::{data}/{p.data_prefix}*",
                base,
                f"Resource::{models}/manifest.json",
            ],
        )
        acknowledge(
            self.finish.role,
            "AwsSolutions-IAM5",
            "The judge step reads its run's job output and writes its decision under runs/ (run folders are named "
            "at run time) and puts the candidate under models/ (versions are content hashes).",
            findings=[*read, "Action::s3:Abort*", runs, f"Resource::{models}"],
        )
        acknowledge(
            self.job_role,
            "AwsSolutions-IAM5",
            "The training job reads the base data and its run's files, writes its output under runs/, reads the "
            "served model (all named at run time), reads its source tarball from the CDK asset bucket and writes "
            "its logs (the log stream names carry the job name); ecr:GetAuthorizationToken and "
            "cloudwatch:PutMetricData (limited to SageMaker's namespace) take no resource.",
            findings=[
                *read,
                "Action::s3:Abort*",
                base,
                runs,
                f"Resource::{models}",
                f"Resource::arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-<AWS::AccountId>-<AWS::Region>/*",
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
                "/aws/sagemaker/TrainingJobs:*",
                "Resource::*",
            ],
        )
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5",
            "What CDK grants a state machine that runs a SageMaker training job and waits for it (RUN_JOB): the "
            "jobs it creates (named per run), the EventBridge rule the .sync integration manages, X-Ray (no resource "
            "level), and invoking the two step functions' versions.",
            findings=[
                "Resource::*",
                "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
                f"Resource::<{logical_id(self.start.function.node.default_child)}.Arn>:*",
                f"Resource::<{logical_id(self.finish.function.node.default_child)}.Arn>:*",
            ],
        )
