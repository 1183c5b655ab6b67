"""The retraining loop's decisions (lambdas.loop): which events train and which judge, the gate, the base data and
forgetting in it, and a run's gathering against moto."""

from __future__ import annotations

import json
import math

import pytest

from lambdas.loop import base_data, gate, gather, plan, publish, table
from lambdas.loop.layout import Layout
from lambdas.loop.settings import LoopSettings
from lambdas.settings import Settings


def ev(user: str, movie: str, at: int, rating: float = 4.0) -> tuple[str, str, float, int, int]:
    return (user, movie, rating, at // 1000, at)


def test_the_newest_share_of_the_new_events_is_held_out_at_one_storage_time():
    old = [ev("1", "a", 1_000), ev("2", "b", 2_000)]
    new = [ev(str(u % 3), f"m{u}", 10_000 + 100 * u) for u in range(10)]
    split = plan.split(old + new, served_through=2_000, holdout_share=0.2)
    assert split.new == 10 and split.cutoff == 10_700
    assert sorted(r[4] for r in split.heldout) == [10_800, 10_900]
    # the candidate trains on every event up to the cutoff, those the served model had too
    assert sorted(r[4] for r in split.train) == [1_000, 2_000] + [10_000 + 100 * u for u in range(8)]
    # events stored in the same millisecond stay on one side
    tied = plan.split([ev("1", "a", 5), ev("2", "b", 7), ev("3", "c", 7)], None, 0.2)
    assert [r[4] for r in tied.heldout] == [7, 7] and [r[4] for r in tied.train] == [5]


@pytest.mark.parametrize(
    ("events", "says"),
    [
        ([ev("1", "a", 1_000)], "no events stored since the served model"),
        ([ev("1", "a", 1_000), ev("1", "b", 3_000)], "too few to hold any out"),
        ([ev("1", "a", 3_000), ev("2", "b", 3_000)], "too few to hold any out"),
    ],
)
def test_a_run_with_nothing_new_to_learn_does_nothing(events, says):
    split = plan.split(events, served_through=2_000, holdout_share=0.2)
    assert split.nothing_to_do and says in split.reason and not split.train


def test_a_forgotten_users_events_are_left_out_but_not_what_they_stored_after():
    events = [ev("1", "a", 100), ev("1", "b", 300), ev("2", "a", 100)]
    assert plan.without_forgotten(events, {"1": 200}) == [ev("1", "b", 300), ev("2", "a", 100)]


SERVED = {"ndcg@10": 0.10, "recall@10": 0.2, "rmse": 0.90}
LOOP = LoopSettings(min_users=20, ndcg_margin=0.005, rmse_margin=0.0)


@pytest.mark.parametrize(
    ("candidate", "served", "users", "publish", "says"),
    [
        ({"ndcg@10": 0.12, "rmse": 0.88}, SERVED, 50, True, "NDCG@10 0.1200 vs served 0.1000"),
        ({"ndcg@10": 0.096, "rmse": 0.90}, SERVED, 50, True, ""),  # within the NDCG margin, RMSE equal
        ({"ndcg@10": 0.09, "rmse": 0.80}, SERVED, 50, False, "NDCG@10 0.0900 < served 0.1000 - 0.005"),
        ({"ndcg@10": 0.20, "rmse": 0.91}, SERVED, 50, False, "RMSE 0.9100 > served 0.9000 + 0"),
        ({"ndcg@10": 0.20, "rmse": 0.80}, SERVED, 19, False, "fewer than 20: too few"),
        ({"ndcg@10": math.nan, "rmse": 0.80}, SERVED, 50, False, "NaN"),
        ({"ndcg@10": 0.0, "rmse": 9.0}, None, 0, True, "no model is served yet"),
    ],
)
def test_the_gate(candidate, served, users, publish, says):
    decision = gate.decide({"candidate": candidate, "served": served, "users": users, "pairs": 3 * users}, LOOP)
    assert decision["publish"] is publish and says in decision["reason"]
    # the record carries both sets of figures and the margins
    assert decision["candidate"] == candidate and decision["served"] == served
    assert (decision["ndcg_margin"], decision["rmse_margin"], decision["users"]) == (0.005, 0.0, users)


def test_loop_settings_from_the_environment_and_refused_values():
    s = LoopSettings.from_env(
        {"DATA_BUCKET": "b", "HOLDOUT_SHARE": "0.1", "GATE_MIN_USERS": "5", "GATE_RMSE_MARGIN": ""}
    )
    assert (s.data_bucket, s.holdout_share, s.min_users, s.rmse_margin) == ("b", 0.1, 5, 0.0)
    with pytest.raises(ValueError, match="holdout_share"):
        LoopSettings(holdout_share=1.0)
    with pytest.raises(ValueError, match="margins"):
        LoopSettings(ndcg_margin=-0.1)
    # the serving settings share the same reader: ints (optional ones too) converted, strings kept, region fallback
    served = Settings.from_env(
        {"TABLE_NAME": "t", "WORKER_TIMEOUT_S": "30", "MODEL_VERSION_CACHE_S": "", "AWS_DEFAULT_REGION": "eu-west-1"}
    )
    assert (served.table_name, served.worker_timeout_s, served.model_version_cache_s) == ("t", 30, 60)
    assert served.region == "eu-west-1" and served.queue_visibility_timeout_s == 180


def test_bad_base_data_is_refused_naming_the_file_and_line(tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_text("userId,movieId,rating,timestamp\n1,2,4.5,10\n1,3,four,11\n")
    with pytest.raises(base_data.BaseDataError, match=r"r\.csv:3: rating 'four' is not a number"):
        base_data.check_ratings(bad)
    bad.write_text("user,item\n1,2\n")
    with pytest.raises(base_data.BaseDataError, match=r"r\.csv:1: the header names no user and movie columns"):
        base_data.check_ratings(bad)
    bad.write_text("userId,movieId,rating\n1,2\n")
    with pytest.raises(base_data.BaseDataError, match=r"r\.csv:2: 2 fields, the header has 3"):
        base_data.check_ratings(bad)


@pytest.fixture
def bucket(moto_aws):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    return s3


def keys(s3, prefix: str = "") -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix=prefix).get("Contents", [])}


def test_base_data_is_versioned_and_a_forgotten_user_leaves_it(bucket, tmp_path):
    s3, layout = bucket, Layout()
    ratings, movies = tmp_path / "ratings.csv", tmp_path / "movies.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,10,4,5\n2,10,3,6\n2,11,5,7\n3,11,1,8\n")
    movies.write_text("movieId,title,genres\n10,A (1990),Drama\n11,B (1991),Comedy\n")
    first = base_data.upload(s3, "data", layout, ratings, movies)
    assert first["rows"] == 4 and keys(s3) == {
        layout.pointer,
        first["prefix"] + "ratings.csv",
        first["prefix"] + "movies.csv",
    }
    assert base_data.read_pointer(s3, "data", layout) == first

    after = base_data.forget(s3, "data", layout, first, {"2": 1_000})
    assert after["version"] != first["version"] and after["rows"] == 2 and after["forgotten_through"] == 1_000
    body = s3.get_object(Bucket="data", Key=after["prefix"] + "ratings.csv")["Body"].read().decode()
    assert body == "userId,movieId,rating,timestamp\n1,10,4,5\n3,11,1,8\n"
    assert not keys(s3, first["prefix"])  # the version with the user is gone
    # a user who was never in the base data: the same version, marked as checked
    again = base_data.forget(s3, "data", layout, after, {"99": 2_000})
    assert again["version"] == after["version"] and again["forgotten_through"] == 2_000


def loop_aws() -> tuple[Settings, object, object, object]:
    """The tables, the model-version parameter's name and clients, as the loop sees them (bucket "data" holds both
    the models and the loop's data)."""
    import boto3

    from infra.local.resources import create_resources
    from lambdas.service.aws import Services

    settings = Settings(
        table_name="requests",
        events_table_name="events",
        bucket_name="data",
        model_version_parameter="/model-version",
        region="us-east-1",
    )
    services = Services(settings)
    create_resources(services)  # the same tables as the stacks (bucket "data" exists: created again is fine)
    ssm, dynamodb = boto3.client("ssm", region_name="us-east-1"), boto3.client("dynamodb", region_name="us-east-1")
    return settings, services, ssm, dynamodb


def test_gather_writes_the_runs_files_and_forgets_in_the_base_data(moto_aws, bucket, tmp_path):
    from lambdas.service.events import tombstone

    settings, services, ssm, dynamodb = loop_aws()
    ssm.put_parameter(Name="/model-version", Value="unpublished", Type="String")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,10,4,5\n2,10,3,6\n2,11,5,7\n")
    base_data.upload(bucket, "data", Layout(), ratings)
    for n, (user, movie) in enumerate([("1", 11), ("2", 12), ("3", 10), ("3", 12), ("1", 12)]):
        dynamodb.put_item(
            TableName="events",
            Item={
                "user_id": {"S": user},
                "item_key": {"S": f"e#{n}"},
                "movie_id": {"N": str(movie)},
                "rating": {"N": "4"},
                "timestamp": {"N": str(100 + n)},
                "received_at": {"N": str(1_000 + n)},
            },
        )
    tombstone(services, "2", now=0.5)  # forgotten at 500 ms: before their events here (the API deletes those)
    loop = LoopSettings(data_bucket="data", holdout_share=0.4)

    record = gather.gather(bucket, dynamodb, ssm, settings, loop, "run-1", now_ms=10**6)
    assert record["action"] == "train" and record["served_version"] is None
    assert (record["train_events"], record["heldout_events"], record["cutoff"]) == (3, 2, 1_002)
    base = bucket.get_object(Bucket="data", Key=record["base"]["prefix"] + "ratings.csv")["Body"].read().decode()
    assert base == "userId,movieId,rating,timestamp\n1,10,4,5\n"  # user 2 left the base data
    events = bucket.get_object(Bucket="data", Key="data/runs/run-1/events/events.csv")["Body"].read().decode()
    # user 2's event came after they were forgotten (the same id back): it is a new word, and kept
    assert events.splitlines() == [
        "userId,movieId,rating,timestamp,receivedAt",
        "1,11,4,100,1000",
        "2,12,4,101,1001",
        "3,10,4,102,1002",
    ]
    assert record["channels"] == {
        "data": f"s3://data/{record['base']['prefix']}",
        "events": "s3://data/data/runs/run-1/events/",
        "served": None,
    }
    assert json.loads(bucket.get_object(Bucket="data", Key="data/runs/run-1/plan.json")["Body"].read()) == record
    # the tombstone is gone once the base data is rewritten; what the user stored after it stays theirs
    assert table.read(table.scan(dynamodb, "events")).forgotten == {}
    # events the last minute stored are left to the next run
    assert gather.gather(bucket, dynamodb, ssm, settings, loop, "run-2", now_ms=1_000 + 60_000)["new"] == 1


def test_the_deployed_steps_never_overlap_and_the_judge_publishes_from_the_jobs_tarball(
    moto_aws, bucket, small_artifact, tmp_path
):
    """steps.start stops when another run of its state machine is going; steps.finish unpacks the job's
    model.tar.gz, applies the gate and switches the parameter only past it, recording the decision."""
    import io
    import tarfile

    import boto3

    from lambdas.loop import steps

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    role = "arn:aws:iam::123456789012:role/sfn"
    machine = sfn.create_state_machine(
        name="m", definition='{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}', roleArn=role
    )["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=machine, name="first")["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine, name="second")["executionArn"]
    assert sfn.describe_execution(executionArn=first)["status"] == "RUNNING"  # moto keeps them running
    event = {"execution": second, "state_machine": machine, "name": "second"}
    said = steps.start(event, bucket, None, None, sfn, Settings(), LoopSettings(data_bucket="data"))
    assert said == {"action": "none", "reason": "run first is still going; this one does nothing"}
    assert steps.job_name("manual-2026/12/07 10:00") == "recsys-manual-2026-12-07-10-00"

    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/v", Value="old", Type="String")
    settings = Settings(bucket_name="data", model_version_parameter="/v")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(small_artifact, arcname="artifact")
        for name, figures in (("evaluation.json", {"users": 50, "pairs": 200}),):
            worse = {"candidate": {"ndcg@10": 0.1, "rmse": 1.2}, "served": {"ndcg@10": 0.2, "rmse": 0.9}}
            body = json.dumps({**figures, **worse}).encode()
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    bucket.put_object(Bucket="data", Key="data/runs/r1/output/job/output/model.tar.gz", Body=raw.getvalue())
    event = {
        "run": {"run_id": "r1", "served_version": "old"},
        "model_artifacts": "s3://data/data/runs/r1/output/job/output/model.tar.gz",
    }
    outcome = steps.finish(event, bucket, ssm, settings, LoopSettings(data_bucket="data"))
    assert outcome["action"] == "stopped" and "NDCG@10 0.1000 < served 0.2000" in outcome["gate"]["reason"]
    assert ssm.get_parameter(Name="/v")["Parameter"]["Value"] == "old"
    manifest = json.loads(
        bucket.get_object(Bucket="data", Key=f"models/{outcome['version']}/manifest.json")["Body"].read()
    )
    assert manifest["gate"]["publish"] is False and manifest["gate"]["run_id"] == "r1"
    decision = json.loads(bucket.get_object(Bucket="data", Key="data/runs/r1/decision.json")["Body"].read())
    assert decision["action"] == "stopped"


def test_a_run_decides_a_running_experiment_first_and_trains_against_the_winner(moto_aws, bucket, tmp_path):
    from contract.serving import Experiment, parse, render

    settings, _, ssm, dynamodb = loop_aws()
    served, candidate = "a" * 16, "b" * 16
    for version in (served, candidate):
        manifest = {"model_version": version, "training": {"events_through": 0}}
        bucket.put_object(Bucket="data", Key=f"models/{version}/manifest.json", Body=json.dumps(manifest).encode())
    running = Experiment(served, candidate, share=0.5, experiment="e1", started_at=0, window_days=1, min_users=1)
    ssm.put_parameter(Name="/model-version", Value=render(running), Type="String")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,10,4,5\n")
    base_data.upload(bucket, "data", Layout(), ratings)
    # 40 users shown a list each; the candidate's users all rate a listed movie two days later, the served ones not
    day = 86_400_000
    for u in range(40):
        variant = "candidate" if u % 2 else "served"
        version = candidate if u % 2 else served
        list_item = {
            "user_id": {"S": str(u)},
            "item_key": {"S": f"l#r{u}"},
            "request_id": {"S": f"r{u}"},
            "model_version": {"S": version},
            "variant": {"S": variant},
            "experiment": {"S": "e1"},
            "movies": {"L": [{"S": "10"}, {"S": "11"}]},
            "listed_at": {"N": str(day)},
        }
        dynamodb.put_item(TableName="events", Item=list_item)
        if u % 2:
            event = {
                "user_id": {"S": str(u)},
                "item_key": {"S": f"e#{u}"},
                "movie_id": {"N": "11"},
                "rating": {"N": "5"},
                "timestamp": {"N": "100"},
                "received_at": {"N": str(3 * day)},
            }
            dynamodb.put_item(TableName="events", Item=event)
    loop = LoopSettings(data_bucket="data", holdout_share=0.4, experiment_horizon_days=7)

    # GIVEN the horizon not yet over for any list: the run waits and changes nothing
    record = gather.gather(bucket, dynamodb, ssm, settings, loop, "run-1", now_ms=4 * day)
    assert record["experiment"]["action"] == "wait" and record["served_version"] == served
    assert parse(ssm.get_parameter(Name="/model-version")["Parameter"]["Value"]).experiment == running
    # WHEN a run comes after the horizon THEN the candidate is promoted first, and the run trains against it
    record = gather.gather(bucket, dynamodb, ssm, settings, loop, "run-2", now_ms=9 * day)
    assert record["experiment"]["action"] == "promote" and record["experiment"]["serving"] == candidate
    assert record["served_version"] == candidate
    assert ssm.get_parameter(Name="/model-version")["Parameter"]["Value"] == candidate
    kept = json.loads(bucket.get_object(Bucket="data", Key=f"models/{candidate}/manifest.json")["Body"].read())
    assert kept["experiment"]["outcome"] == "promoted"
    assert kept["experiment"]["decision"]["figures"]["candidate"]["hit_rate"] == 1.0
    # the next run has no experiment to decide
    assert "experiment" not in gather.gather(bucket, dynamodb, ssm, settings, loop, "run-3", now_ms=9 * day)


def test_a_passing_candidate_becomes_an_experiment_when_a_canary_share_is_set(moto_aws, bucket, small_artifact):
    import boto3

    from contract import read_manifest
    from contract.serving import parse, render

    ssm = boto3.client("ssm", region_name="us-east-1")
    settings = Settings(bucket_name="data", model_version_parameter="/v")
    version = read_manifest(small_artifact)["model_version"]
    passed = {"publish": True, "reason": "better"}
    canary = LoopSettings(data_bucket="data", canary_share=0.1, experiment_window_days=3, experiment_min_users=50)

    # GIVEN a served model and a canary share: the candidate goes to 10% of users, the served one stays
    ssm.put_parameter(Name="/v", Value="old", Type="String")
    out = publish.record(bucket, ssm, settings, small_artifact, passed, "r1", canary)
    now = parse(ssm.get_parameter(Name="/v")["Parameter"]["Value"])
    assert out["published"] and out["experiment"] == "exp-r1" and out["before"] == "old"
    assert (now.served, now.experiment.candidate, now.experiment.share) == ("old", version, 0.1)
    assert (now.experiment.window_days, now.experiment.min_users) == (3, 50)
    # WHEN another candidate passes while that experiment runs THEN it is kept in the store only
    held = publish.record(bucket, ssm, settings, small_artifact, passed, "r2", canary)
    assert not held["published"] and "still runs" in held["held"]
    assert parse(ssm.get_parameter(Name="/v")["Parameter"]["Value"]) == now
    # no served model yet, or no canary share: served to everyone at once, as before
    for value, loop in (("unpublished", canary), ("old", LoopSettings(data_bucket="data"))):
        ssm.put_parameter(Name="/v", Value=render(value), Type="String", Overwrite=True)
        assert "experiment" not in publish.record(bucket, ssm, settings, small_artifact, passed, "r3", loop)
        assert ssm.get_parameter(Name="/v")["Parameter"]["Value"] == version
