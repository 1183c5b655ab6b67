"""publish_model against moto: upload a version, switch the worker's parameter, roll back, refuse bad input."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from infra import publish_model
from infra.config import OUTPUT_BUCKET, OUTPUT_MODEL_PARAMETER, OUTPUT_SITE_URL, UNPUBLISHED
from tests.infra.conftest import write_fake_artifact

BUCKET = "model-bucket"
PARAMETER = "model-version-param"


@pytest.fixture
def deployed(moto_aws):
    """A model bucket and the worker's version parameter as the stack creates them (nothing published)."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=UNPUBLISHED, Type="String")
    return ["--bucket", BUCKET, "--parameter", PARAMETER]


def served() -> str:
    return boto3.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]


def keys() -> list[str]:
    return sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_publish_uploads_under_version_prefix_and_switches(deployed, tmp_path):
    """The artifact lands under models/<version>/ and the parameter then names that version."""
    version = write_fake_artifact(tmp_path / "a", "one")
    assert publish_model.main(["--artifact", str(tmp_path / "a"), *deployed]) == 0
    assert served() == version
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert keys() == [f"models/{version}/{n}" for n in names]


def test_republishing_a_version_uploads_nothing(deployed, tmp_path, capsys):
    """A version already complete in the bucket is not uploaded again."""
    write_fake_artifact(tmp_path / "a", "one")
    publish_model.main(["--artifact", str(tmp_path / "a"), *deployed])
    capsys.readouterr()
    assert publish_model.main(["--artifact", str(tmp_path / "a"), *deployed]) == 0
    assert "not uploading again" in capsys.readouterr().out


def test_rollback_returns_to_the_previous_version_and_back(deployed, tmp_path):
    """--rollback serves the version before the current one; a second rollback undoes the first."""
    v1 = write_fake_artifact(tmp_path / "a", "one")
    v2 = write_fake_artifact(tmp_path / "b", "two")
    publish_model.main(["--artifact", str(tmp_path / "a"), *deployed])
    publish_model.main(["--artifact", str(tmp_path / "b"), *deployed])
    assert served() == v2
    assert publish_model.main(["--rollback", *deployed]) == 0
    assert served() == v1
    assert publish_model.main(["--rollback", *deployed]) == 0
    assert served() == v2


def test_rollback_with_nothing_before_is_refused(deployed, tmp_path, capsys):
    """The first published version has nothing to roll back to (the placeholder is not a model)."""
    v1 = write_fake_artifact(tmp_path / "a", "one")
    publish_model.main(["--artifact", str(tmp_path / "a"), *deployed])
    assert publish_model.main(["--rollback", *deployed]) == 2
    assert "no earlier version" in capsys.readouterr().err
    assert served() == v1


def test_switch_to_an_unpublished_version_is_refused(deployed, capsys):
    """--version of a version that is not in the bucket leaves the parameter alone."""
    assert publish_model.main(["--version", "0123456789abcdef", *deployed]) == 2
    assert "not published" in capsys.readouterr().err
    assert served() == UNPUBLISHED


def test_switch_to_an_incomplete_version_is_refused(deployed, tmp_path, capsys):
    """A version whose files are missing in the bucket is never served."""
    v1 = write_fake_artifact(tmp_path / "a", "one")
    publish_model.main(["--artifact", str(tmp_path / "a"), "--upload-only", *deployed])
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"models/{v1}/weights.npz")
    assert publish_model.main(["--version", v1, *deployed]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert served() == UNPUBLISHED


def test_tampered_artifact_is_refused_before_upload(deployed, tmp_path, capsys):
    """An artifact failing verification uploads nothing and switches nothing."""
    write_fake_artifact(tmp_path / "a", "one")
    (tmp_path / "a" / "weights.npz").write_bytes(b"tampered")
    assert publish_model.main(["--artifact", str(tmp_path / "a"), *deployed]) == 2
    assert "weights.npz" in capsys.readouterr().err
    assert keys() == []
    assert served() == UNPUBLISHED


def test_list_marks_the_served_version(deployed, tmp_path, capsys):
    """--list shows every published version, the served one starred."""
    v1 = write_fake_artifact(tmp_path / "a", "one")
    v2 = write_fake_artifact(tmp_path / "b", "two")
    publish_model.main(["--artifact", str(tmp_path / "a"), *deployed])
    publish_model.main(["--artifact", str(tmp_path / "b"), "--upload-only", *deployed])
    capsys.readouterr()
    assert publish_model.main(["--list", *deployed]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted([f"* {v1}", f"  {v2}"])


def test_bucket_and_parameter_come_from_the_stack_outputs(moto_aws, tmp_path: Path, capsys):
    """With --stack, the bucket and parameter are read from the deployed stack's outputs; the page's URL is printed
    last (what `make deploy` ends with)."""
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            # moto needs a Name (CloudFormation would generate one, as it does for the real stack)
            "Param": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "recs-model-version", "Type": "String", "Value": UNPUBLISHED},
            },
        },
        "Outputs": {
            OUTPUT_BUCKET: {"Value": {"Ref": "Bucket"}},
            OUTPUT_MODEL_PARAMETER: {"Value": {"Ref": "Param"}},
            OUTPUT_SITE_URL: {"Value": "https://d111111abcdef8.cloudfront.net/"},
        },
    }
    boto3.client("cloudformation").create_stack(StackName="Recs", TemplateBody=json.dumps(template))
    version = write_fake_artifact(tmp_path / "a", "one")
    assert publish_model.main(["--artifact", str(tmp_path / "a"), "--stack", "Recs"]) == 0
    outputs = boto3.client("cloudformation").describe_stacks(StackName="Recs")["Stacks"][0]["Outputs"]
    names = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    ssm = boto3.client("ssm")
    assert ssm.get_parameter(Name=names[OUTPUT_MODEL_PARAMETER])["Parameter"]["Value"] == version
    s3_keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=names[OUTPUT_BUCKET])["Contents"]]
    assert f"models/{version}/manifest.json" in s3_keys
    assert capsys.readouterr().out.splitlines()[-1] == "web page: https://d111111abcdef8.cloudfront.net/"


def test_unknown_stack_is_a_clear_error(moto_aws, capsys):
    """A missing stack is reported, not a traceback."""
    assert publish_model.main(["--rollback", "--stack", "Nope"]) == 2
    assert "not found" in capsys.readouterr().err


def test_list_shows_what_the_gate_decided(deployed, tmp_path, capsys):
    """A version the retraining loop judged carries the gate's record in its manifest: --list shows it."""
    v1 = write_fake_artifact(tmp_path / "a", "one")
    publish_model.main(["--artifact", str(tmp_path / "a"), *deployed])
    bucket = deployed[deployed.index("--bucket") + 1]
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"models/{v1}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    gate = {"publish": False, "run_id": "r7", "users": 41, "reason": "RMSE 0.9100 > served 0.9000 + 0"}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({**manifest, "gate": gate}).encode())
    capsys.readouterr()
    assert publish_model.main(["--list", *deployed]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"* {v1}  stopped by the gate (run r7, 41 users judged): RMSE 0.9100 > served 0.9000 + 0"
    ]


def test_switching_while_an_experiment_runs_is_refused(deployed, tmp_path, capsys):
    """An experiment ends through infra.experiment (which records its outcome), never by being overwritten."""
    from contract.serving import Experiment, render

    v1 = write_fake_artifact(tmp_path / "a", "one")
    v2 = write_fake_artifact(tmp_path / "b", "two")
    publish_model.main(["--artifact", str(tmp_path / "a"), *deployed])
    publish_model.main(["--artifact", str(tmp_path / "b"), "--upload-only", *deployed])
    running = render(Experiment(v1, v2, share=0.1, experiment="exp-1", started_at=0))
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=running, Type="String", Overwrite=True)
    capsys.readouterr()
    assert publish_model.main(["--version", v2, *deployed]) == 2
    assert "experiment exp-1 runs" in capsys.readouterr().err and served() == running
    assert publish_model.main(["--list", *deployed]) == 0  # listing still works: the served one is marked
    assert f"* {v1}" in capsys.readouterr().out
