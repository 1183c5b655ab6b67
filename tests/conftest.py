"""Shared fixtures: quiet TensorFlow, the MovieLens folder from RECSYS_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ notices (oneDNN, tf.data) are noise here


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real MovieLens folder (CI sets RECSYS_DATA_DIR=../shared/data); tests needing it skip without it."""
    root = os.environ.get("RECSYS_DATA_DIR")
    if not root or not (Path(root) / "ml-latest-small" / "ratings.csv").exists():
        pytest.skip("RECSYS_DATA_DIR with ml-latest-small is not set")
    return Path(root)


GENRES = ["Action", "Comedy", "Drama", "Horror", "Sci-Fi"]


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    """A small model trained on seeded synthetic ratings with movie metadata (genres, years)."""
    return train_small(tmp_path_factory, epochs=4)


def train_small(tmp_path_factory, epochs: int) -> Path:
    pytest.importorskip("keras")
    import numpy as np

    from training import train as train_cli
    from training.synthetic import low_rank_ratings

    root = tmp_path_factory.mktemp("small")
    ratings = low_rank_ratings(n_users=120, n_items=80, rank=3, density=0.25, noise=0.2, seed=1)
    ratings["rating"] = (np.round(ratings["rating"] * 2) / 2).clip(0.5, 5.0)
    ratings.rename(columns={"user_id": "userId", "movie_id": "movieId"}).to_csv(root / "ratings.csv", index=False)
    rng = np.random.default_rng(2)
    with open(root / "movies.csv", "w") as f:
        f.write("movieId,title,genres\n")
        for m in range(80):
            gs = "|".join(sorted(rng.choice(GENRES, size=1 + m % 2, replace=False)))
            f.write(f'{m},"Movie {m}, The ({1950 + m})",{gs}\n')
    out = root / "model"
    args = [
        "--ratings",
        str(root / "ratings.csv"),
        "--movies",
        str(root / "movies.csv"),
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        "--dim",
        "8",
        "--hidden",
        "32",
        "16",
        "--rank-dim",
        "8",
        "--batch-size",
        "256",
        "--rank-blend",
        "1.0",
        "--quiet",
    ]
    assert train_cli.main(args) == 0
    return out


@pytest.fixture(scope="session")
def small_artifact(small_model_dir, tmp_path_factory) -> Path:
    """``small_model_dir`` exported to an artifact directory."""
    from model_export.export import export

    out = tmp_path_factory.mktemp("artifact") / "artifact"
    export(small_model_dir, out, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def candidate_artifact(tmp_path_factory) -> Path:
    """Another small model (the same data, one more epoch: another version), for experiments with two models."""
    from model_export.export import export

    out = tmp_path_factory.mktemp("candidate") / "artifact"
    export(train_small(tmp_path_factory, epochs=5), out, log=lambda *_: None)
    return out


@pytest.fixture
def aws_credentials(monkeypatch):
    """Fake credentials and a region for boto3, set before any client is made (never real AWS)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def moto_aws(aws_credentials):
    """moto's in-process AWS (every service), fresh for each test."""
    from moto import mock_aws

    with mock_aws():
        yield
