"""The retraining loop end to end on the local stack: events posted through the API, gathered with the base data,
a candidate trained and exported by the SageMaker job's entry point in a subprocess, judged beside the served
model on held-out events, published only past the gate, and served by the running stack without a restart."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

from infra.client import Client
from infra.local.connection import local_aws, stack_connection
from infra.local.stack import LocalStack
from infra.retrain import RunFailed, run
from lambdas.loop import base_data
from lambdas.loop.layout import Layout
from lambdas.loop.settings import LoopSettings

# the small fixture model's settings (tests/conftest.py), as the job's hyperparameters
HPS = {"epochs": 10, "dim": 8, "hidden": [32, 16], "rank_dim": 8, "batch_size": 256, "rank_blend": 1.0}


def new_ratings(seed_users: range, per_user: int, offset: int) -> dict[int, list[dict]]:
    """Ratings the fixture's users give movies they have not rated, from the same hidden factors as the fixture's
    ratings (training.synthetic.low_rank_ratings draws them first, whatever the density); as people do, they rate
    the movies they like best first."""
    from training.synthetic import low_rank_ratings

    base = low_rank_ratings(n_users=120, n_items=80, rank=3, density=0.25, noise=0.2, seed=1)
    full = low_rank_ratings(n_users=120, n_items=80, rank=3, density=0.9, noise=0.2, seed=1)
    seen = set(zip(base["user_id"], base["movie_id"], strict=True))
    out: dict[int, list[dict]] = {}
    for u in seed_users:
        rows = full[(full["user_id"] == u)].sort_values(["rating", "movie_id"], ascending=[False, True])
        fresh = [r for r in rows.itertuples() if (u, r.movie_id) not in seen][offset : offset + per_user]
        out[u] = [
            {"movie_id": int(r.movie_id), "rating": float(np.clip(round(r.rating * 2) / 2, 0.5, 5.0))} for r in fresh
        ]
    return out


def post(client: Client, ratings: dict[int, list[dict]], per_call: int = 4) -> None:
    """In rounds, as people rate over time: each user's next few ratings, user after user."""
    longest = max(map(len, ratings.values()))
    for start in range(0, longest, per_call):
        for user, events in ratings.items():
            if events[start : start + per_call]:
                assert client.post_events(user, events[start : start + per_call])["stored"] > 0


def shuffle_ratings(opt: Path) -> None:
    """Break the candidate: every rating of its training data moved to a random row."""
    rng = np.random.default_rng(0)
    for path in (opt / "input/data/data/ratings.csv", opt / "input/data/events/events.csv"):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        at = rows[0].index("rating")
        values = [r[at] for r in rows[1:]]
        rng.shuffle(values)
        for r, v in zip(rows[1:], values, strict=True):
            r[at] = v
        with open(path, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)


def served_version(client: Client, timeout_s: float = 15.0, not_: str | None = None) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        version = client.request("GET", "/model").body["model_version"]
        if version != not_ or time.monotonic() > deadline:
            return version
        time.sleep(0.5)


def test_the_loop_publishes_a_better_model_stops_a_broken_one_and_does_nothing_without_events(
    small_artifact, small_model_dir
):
    with LocalStack(small_artifact, workers=1, api_processes=1, api_key=None, limits=None) as stack:
        aws = local_aws(stack_connection(stack))
        loop = LoopSettings(data_bucket=aws.settings.bucket_name, min_users=5, ndcg_margin=0.05, rmse_margin=0.05)
        data = small_model_dir.parent
        base_data.upload(aws.s3, loop.data_bucket, Layout(), data / "ratings.csv", data / "movies.csv")
        client = Client(stack.url)
        first = served_version(client)
        quiet = {"log": lambda *_: None, "settle_ms": 0, "hyperparameters": HPS}

        # GIVEN no event yet: WHEN the loop runs THEN it does nothing
        assert run(aws, loop, **quiet)["action"] == "none"

        # GIVEN 60 users' new ratings: WHEN the loop runs THEN it publishes a candidate and the stack serves it
        post(client, new_ratings(range(0, 60), 8, 0))
        outcome = run(aws, loop, **quiet)
        assert outcome["action"] == "published", outcome["gate"]["reason"]
        gate = outcome["gate"]
        assert gate["served_version"] == first and gate["users"] >= 5
        assert outcome["before"] == first
        assert served_version(client, not_=first) == outcome["version"]
        card = client.request("GET", "/model").body
        assert card["model_version"] == outcome["version"]
        manifest = aws.s3.get_object(Bucket=loop.data_bucket, Key=f"models/{outcome['version']}/manifest.json")
        assert b'"gate"' in manifest["Body"].read()

        # GIVEN the other 60 users' new ratings, WHEN a candidate trained on shuffled ratings is judged THEN the gate
        # stops it and the served version stays
        second = outcome["version"]
        post(client, new_ratings(range(60, 120), 8, 0))
        broken = run(aws, loop, prepare=shuffle_ratings, **quiet)
        assert broken["action"] == "stopped", broken["gate"]
        assert "RMSE" in broken["gate"]["reason"] or "NDCG" in broken["gate"]["reason"]
        time.sleep(3)  # past the local stack's parameter cache
        assert served_version(client) == second
        assert aws.ssm.get_parameter(Name=aws.settings.model_version_parameter)["Parameter"]["Value"] == second

        # WHEN the training step fails THEN the run says why and the served model is untouched
        with pytest.raises(RunFailed, match="hyperparameter 'ratings': the data come from the channels"):
            run(aws, loop, **{**quiet, "hyperparameters": {"ratings": "elsewhere.csv"}})
        assert served_version(client) == second


def test_the_clis_say_what_is_missing(tmp_path, monkeypatch, capsys):
    from infra import base_data as base_cli
    from infra import retrain as retrain_cli

    monkeypatch.setenv("RECOMMENDER_LOCAL_CONNECTION", str(tmp_path / "none.json"))
    assert retrain_cli.main(["--local"]) == 2
    assert "no running local stack" in capsys.readouterr().err
    assert base_cli.main(["--local", "--ratings", str(tmp_path / "r.csv")]) == 2
    assert "no running local stack" in capsys.readouterr().err


def test_base_data_cli_uploads_checks_and_shows(moto_aws, tmp_path, capsys):
    import boto3

    from infra import base_data as base_cli

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="data")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,2,4.5,10\n")
    assert base_cli.main(["--bucket", "data", "--region", "us-east-1", "--ratings", str(ratings)]) == 0
    assert "base data" in capsys.readouterr().out
    assert base_cli.main(["--bucket", "data", "--region", "us-east-1", "--show"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    ratings.write_text("userId,movieId,rating,timestamp\n1,2,x,10\n")
    assert base_cli.main(["--bucket", "data", "--region", "us-east-1", "--ratings", str(ratings)]) == 2
    assert f"{ratings}:2: rating 'x' is not a number" in capsys.readouterr().err
