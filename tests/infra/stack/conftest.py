"""The synthesized stacks the stack tests read, each built once per session (synthesizing bundles the Lambda
packages, the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.stack import RecommenderStack
from tests.infra.stack.helpers import EDGE_CONTEXT, build_stack, ref_id


@pytest.fixture(scope="session")
def outdir(tmp_path_factory) -> Path:
    """One cloud-assembly folder for the session: the bundled assets are built once and reused."""
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def stack(outdir, fake_artifact) -> RecommenderStack:
    """The stack as `make synth` builds it (cdk.json's context, an artifact): synthesized once per session."""
    return build_stack(outdir, fake_artifact)[1]


@pytest.fixture(scope="session")
def template(stack) -> Template:
    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def ids(stack) -> dict[str, str]:
    """Logical ids of the resources the assertions refer to."""
    qw = stack.queue_worker
    return {
        "queue": ref_id(stack, qw.queue),
        "dlq": ref_id(stack, qw.dlq),
        "worker": ref_id(stack, qw.worker.function),
        "worker_role": ref_id(stack, qw.worker.role),
        "worker_logs": ref_id(stack, qw.worker.log_group),
        "dlq_worker_role": ref_id(stack, qw.dead_letter_worker.role),
        "dlq_worker_logs": ref_id(stack, qw.dead_letter_worker.log_group),
        "api_function": ref_id(stack, stack.api.handler.function),
        "api_role": ref_id(stack, stack.api.handler.role),
        "api_logs": ref_id(stack, stack.api.handler.log_group),
        "api": ref_id(stack, stack.api.api),
        "access_logs": ref_id(stack, stack.api.access_logs),
        "table": ref_id(stack, stack.results.table),
        "events_table": ref_id(stack, stack.events.table),
        "bucket": ref_id(stack, stack.model_store.bucket),
        "parameter": ref_id(stack, stack.model_store.version_parameter),
        "model_access_logs": ref_id(stack, stack.model_store.access_logs),
        "site_bucket": ref_id(stack, stack.site.bucket),
        "distribution": ref_id(stack, stack.site.distribution),
        "distribution_logs": ref_id(stack, stack.site.distribution_logs),
        "key_secret": ref_id(stack, stack.site.api_key_secret),
        "site_key": ref_id(stack, stack.site.api_key),
        "web_acl": stack.resolve(stack.get_logical_id(stack.site.web_acl)),
        "in_us_east_1": stack.resolve(stack.get_logical_id(stack.site.in_us_east_1)),
    }


@pytest.fixture(scope="session")
def edge_stack(outdir, fake_artifact) -> RecommenderStack:
    """An existing web ACL (any region), a custom domain with its certificate, the page's key replaced once."""
    return build_stack(outdir / "edge", fake_artifact, **EDGE_CONTEXT, **{"aws:cdk:bundling-stacks": []})[1]
