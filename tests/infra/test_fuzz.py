"""schemathesis against the local stack: every check and phase (stateful included), seed 42, no failure allowed."""

from __future__ import annotations

import pytest

from infra.accounts import running_target, sign_up
from infra.fuzz import fuzz
from infra.local import LocalStack

pytest.importorskip("onnxruntime")

MAX_EXAMPLES = 25  # per operation and phase; `make fuzz` runs 500


def test_the_api_passes_every_schemathesis_check(small_artifact):
    with LocalStack(small_artifact, port=0, workers=1) as stack:
        token = sign_up(running_target(stack), "fuzz@example.com", "fuzzing password 1")["id_token"]
        done = fuzz(stack.url, stack.api_key, MAX_EXAMPLES, token=token)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in done.stdout, phase
