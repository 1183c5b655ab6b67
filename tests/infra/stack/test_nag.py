"""cdk-nag's AWS Solutions pack on the stack, with its options."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.infra.stack.helpers import EDGE_CONTEXT, build_stack


def nag_errors(app: cdk.App, outdir: Path) -> list[str]:
    """Run cdk-nag's AWS Solutions pack at synth; ``RULE path`` for every unacknowledged error finding."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
    report = outdir / "validation-report.json"
    if not report.exists():
        return []
    found = []
    for plugin in json.loads(report.read_text())["pluginReports"]:
        for violation in plugin["violations"]:
            if violation["ruleName"].startswith("AwsSolutions-") and violation["severity"] == "error":
                found += [f"{violation['ruleName']} {c['constructPath']}" for c in violation["violatingConstructs"]]
    return found


@pytest.mark.parametrize(
    "context",
    [{}, {"waf": "false"}, EDGE_CONTEXT, {"auth": "iam", "site": "false"}],
    ids=["defaults", "no-waf", "given-web-acl-custom-domain", "iam-no-site"],
)
def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(outdir, fake_artifact, context, request):
    """Every AwsSolutions finding on the stack is fixed or acknowledged with a reason (the synth would fail), with
    the page's options too."""
    folder = outdir / f"nag-{request.node.callspec.id}"
    app, _ = build_stack(folder, fake_artifact, **context, **{"aws:cdk:bundling-stacks": []})
    assert nag_errors(app, folder) == []


def test_cdk_nag_check_is_live(tmp_path):
    """The same check reports a plainly non-compliant bucket (so an empty list above means something)."""
    app = cdk.App(outdir=str(tmp_path))
    s3.Bucket(cdk.Stack(app, "Bad"), "Open")
    assert any(e.startswith("AwsSolutions-S10 ") for e in nag_errors(app, tmp_path))
