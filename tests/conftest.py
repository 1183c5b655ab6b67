"""Shared fixtures: quiet TensorFlow, the MovieLens folder from RECSYS_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real MovieLens folder (CI sets RECSYS_DATA_DIR=../shared/data); tests needing it skip without it."""
    root = os.environ.get("RECSYS_DATA_DIR")
    if not root or not (Path(root) / "ml-latest-small" / "ratings.csv").exists():
        pytest.skip("RECSYS_DATA_DIR with ml-latest-small is not set")
    return Path(root)
