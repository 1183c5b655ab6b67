"""What the stack tests share: building the stack, reading logical ids and grants, the page's CloudFront pieces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.config import StackConfig, cdk_json_context
from infra.stack import RecommenderStack

ROOT = Path(__file__).resolve().parents[3]
LAMBDA_UNZIPPED_LIMIT_MB = 250
GTE = "GreaterThanOrEqualToThreshold"
BLOCK_ALL_PUBLIC = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}
SSE_S3 = {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def build_stack(outdir: Path, artifact: Path | None, **context: Any) -> tuple[cdk.App, RecommenderStack]:
    """The stack as ``cdk synth`` builds it: cdk.json's context, plus overrides."""
    ctx = cdk_json_context() | {"artifact": str(artifact) if artifact else "none"} | context
    app = cdk.App(context=ctx, outdir=str(outdir))
    config = StackConfig.from_context(app.node.try_get_context)
    return app, RecommenderStack(app, config.stack_name, config=config)


def ref_id(stack: cdk.Stack, construct: Any) -> str:
    """The logical id of an L2 construct's CloudFormation resource."""
    return stack.resolve(stack.get_logical_id(construct.node.default_child))


def arn(logical_id: str) -> dict:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def permissions(template: Template, role_id: str) -> dict[str, set[str]]:
    """Every action granted to a role (inline policies, attached policies) -> the resources, as JSON strings."""
    granted: dict[str, set[str]] = {}
    role = template.to_json()["Resources"][role_id]
    assert not role["Properties"].get("ManagedPolicyArns"), "no managed policies on function roles"
    documents = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            documents.append(policy["Properties"]["PolicyDocument"])
    for document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                granted.setdefault(action, set()).update(json.dumps(r, sort_keys=True) for r in resources)
    return granted


def expect(grants: dict[tuple[str, ...], list[Any]]) -> dict[str, set[str]]:
    """{(actions...): [resources]} -> the shape ``permissions`` returns."""
    out: dict[str, set[str]] = {}
    for actions, resources in grants.items():
        for action in actions:
            out.setdefault(action, set()).update(json.dumps(r, sort_keys=True) for r in resources)
    return out


def asset_dir(outdir: Path, template: Template, function_id: str) -> Path:
    key = template.to_json()["Resources"][function_id]["Properties"]["Code"]["S3Key"]
    return outdir / f"asset.{key.removesuffix('.zip')}"


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def routes(template: Template) -> dict[str, dict]:
    """``"METHOD /path"`` -> the method's properties, paths rebuilt from the API's resources."""
    resources = template.find_resources("AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if not isinstance(ref, dict) or "Ref" not in ref:
            return ""  # the root resource (GetAtt RootResourceId)
        props = resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        f"{m['Properties']['HttpMethod']} {path(m['Properties']['ResourceId']) or '/'}": m["Properties"]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
    }


def distribution_config(template: Template, ids: dict[str, str]) -> dict:
    return template.to_json()["Resources"][ids["distribution"]]["Properties"]["DistributionConfig"]


def api_behavior(template: Template, ids: dict[str, str], path: str = "/api/*") -> dict:
    """The distribution's behaviour for ``path`` (the API's, or ``/auth``, the page's Cognito calls)."""
    (behavior,) = [b for b in distribution_config(template, ids)["CacheBehaviors"] if b["PathPattern"] == path]
    return behavior


def origin(template: Template, ids: dict[str, str], origin_id: str) -> dict:
    (found,) = [o for o in distribution_config(template, ids)["Origins"] if o["Id"] == origin_id]
    return found


GIVEN_WEB_ACL = "arn:aws:wafv2:us-east-1:111122223333:global/webacl/edge/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


GIVEN_CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


EDGE_CONTEXT = {
    "web_acl_arn": GIVEN_WEB_ACL,
    "site_domain": "recs.example.org",
    "site_certificate_arn": GIVEN_CERTIFICATE,
    "site_key_version": "2",
}
