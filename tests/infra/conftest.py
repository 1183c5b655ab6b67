"""Fixtures for the CDK stack and publish_model tests: a tiny, valid artifact; quiet jsii."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

# Before aws_cdk starts its Node runtime: the Node-version banner is noise in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ARTIFACT_FILES = ("catalogue.onnx", "pairwise.onnx", "weights.npz", "catalogue.npz")


def write_fake_artifact(directory: Path, seed: str = "a") -> str:
    """An artifact directory that passes ``lambdas.engine.artifact.verify`` (placeholder bytes); returns its version."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ARTIFACT_FILES:
        data = f"{seed}:{name}".encode() * 10
        (directory / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    text = "\n".join(f"{name}:{files[name]['sha256']}" for name in sorted(files))
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    manifest = {"format": 1, "model_version": version, "files": files}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return version


@pytest.fixture(scope="session")
def fake_artifact(tmp_path_factory) -> Path:
    """A verifiable (not loadable) artifact directory: enough for the deploy's upload and publish_model."""
    path = tmp_path_factory.mktemp("fake") / "artifact"
    write_fake_artifact(path)
    return path
