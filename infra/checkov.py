"""checkov (the IaC scanner, ``python -m infra.scan``) suppressions, written into the template.

Each one is an entry ``{"id": "CKV_AWS_n", "comment": why}`` in the resource's ``Metadata.checkov.skip`` list, the
form checkov reads from CloudFormation; the reasons sit next to the resources, like the cdk-nag acknowledgments in
``infra.nag``. Reasons shared by several resources are the constants below. Only the checks in ``CHECKS`` may be
skipped, each on its resource type: a mistyped id would silently skip nothing (or the wrong check).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # infra.scan reads templates only: no CDK (jsii) runtime for it
    import aws_cdk as cdk
    from constructs import IConstruct

# checkov's ids for AWS checks: CKV_AWS_<n> (resource checks) and CKV2_AWS_<n> (graph checks).
CHECK_ID = re.compile(r"CKV2?_AWS_[1-9][0-9]*")
# A reason says why, not just "n/a": at least a sentence.
MIN_COMMENT = 40

# The checks this stack skips somewhere: id -> (the resource type checkov runs it on, checkov 3's title).
CHECKS: dict[str, tuple[str, str]] = {
    "CKV_AWS_18": ("AWS::S3::Bucket", "Ensure the S3 bucket has access logging enabled"),
    "CKV_AWS_27": ("AWS::SQS::Queue", "Ensure all data stored in the SQS queue is encrypted"),
    "CKV_AWS_68": ("AWS::CloudFront::Distribution", "CloudFront Distribution should have WAF enabled"),
    "CKV_AWS_111": ("AWS::IAM::Policy", "Ensure IAM policies does not allow write access without constraints"),
    "CKV_AWS_115": (
        "AWS::Lambda::Function",
        "Ensure that AWS Lambda function is configured for function-level concurrent execution limit",
    ),
    "CKV_AWS_116": (
        "AWS::Lambda::Function",
        "Ensure that AWS Lambda function is configured for a Dead Letter Queue(DLQ)",
    ),
    "CKV_AWS_117": ("AWS::Lambda::Function", "Ensure that AWS Lambda function is configured inside a VPC"),
    "CKV_AWS_119": ("AWS::DynamoDB::Table", "Ensure DynamoDB Tables are encrypted using a KMS Customer Managed CMK"),
    "CKV_AWS_120": ("AWS::ApiGateway::Stage", "Ensure API Gateway caching is enabled"),
    "CKV_AWS_149": ("AWS::SecretsManager::Secret", "Ensure that Secrets Manager secret is encrypted using KMS CMK"),
    "CKV_AWS_158": ("AWS::Logs::LogGroup", "Ensure that CloudWatch Log Group is encrypted by KMS"),
    "CKV_AWS_173": ("AWS::Lambda::Function", "Check encryption settings for Lambda environment variable"),
    "CKV_AWS_174": (
        "AWS::CloudFront::Distribution",
        "Verify CloudFront Distribution Viewer Certificate is using TLS v1.2 or higher",
    ),
    "CKV_AWS_192": (
        "AWS::WAFv2::WebACL",
        "Ensure WAF prevents message lookup in Log4j2. See CVE-2021-44228 aka log4jshell",
    ),
}

LOG_GROUP_KMS = (
    "CloudWatch Logs encrypts every log group at rest (service-owned keys). KMS here needs a customer-managed key "
    "($1/month plus requests, and a key policy for the logs service): the logs hold no secrets and no request "
    "bodies (the functions log request ids, statuses and errors; the stage logs errors only, with no data trace, "
    "and its access logs omit the caller), and they expire after log_retention_days."
)
FUNCTION_VPC = (
    "No VPC: the function reaches only AWS APIs (S3, DynamoDB, SQS, SSM, X-Ray) over TLS with its own IAM role, and "
    "nothing it uses has a private address. A VPC would need a NAT gateway (~$32/month) or interface endpoints for "
    "SQS, SSM and X-Ray (~$7/month each per AZ), and add no barrier: access is decided by IAM, not the network."
)
FUNCTION_ENV_KMS = (
    "Lambda encrypts environment variables at rest with its AWS-managed key. These hold resource names and "
    "tunables, never a secret (the page's API key lives in Secrets Manager and API Gateway); a customer-managed key "
    "would cost $1/month and a kms:Decrypt on each cold start for no gain."
)
FUNCTION_DLQ = (
    "Never invoked asynchronously: API Gateway invokes the API function synchronously (errors reach the caller as "
    "5xx, alarmed), and the SQS event sources invoke the workers synchronously (a failed message returns to its "
    "queue: the request queue moves it to the DLQ after max_receive_count receives, the DLQ keeps it 14 days). A "
    "function DLQ only catches asynchronous invocations."
)
CDK_HANDLER = (
    "aws-cdk-lib's own custom-resource handler: CloudFormation invokes it only during a deploy or destroy of this "
    "stack, and a failure fails (and rolls back) that stack operation, where it is seen."
)
CDK_HANDLER_DLQ = CDK_HANDLER + " A dead-letter queue would only hold a deploy event that nothing replays."
CDK_HANDLER_VPC = CDK_HANDLER + " It calls only S3 (and CloudFront) APIs, so a VPC would add a NAT cost for nothing."
CDK_HANDLER_CONCURRENCY = (
    CDK_HANDLER + " It runs once per custom resource of this template and stack operation: nothing to cap."
)
CDK_HANDLER_ENV_KMS = CDK_HANDLER + " Its environment holds no secret; Lambda's AWS-managed key encrypts it at rest."


def cfn_resource(scope: IConstruct) -> cdk.CfnResource:
    """``scope`` if it is a CloudFormation resource, else its default child (an L2's resource)."""
    import aws_cdk as cdk

    if isinstance(scope, cdk.CfnResource):
        return scope
    child = scope.node.default_child
    if not isinstance(child, cdk.CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to carry a checkov skip")
    return child


def skip(scope: IConstruct, check: str, comment: str) -> None:
    """Skip checkov's ``check`` on ``scope``'s resource, saying why; merged with the resource's other skips."""
    resource = cfn_resource(scope)
    problem = entry_problem(resource.cfn_resource_type, {"id": check, "comment": comment})
    if problem:
        raise ValueError(f"{resource.node.path}: {problem}")
    metadata = resource.get_metadata("checkov") or {}
    skips = list(metadata.get("skip", []))
    if any(entry["id"] == check for entry in skips):
        raise ValueError(f"{check} is already skipped on {resource.node.path}")
    skips.append({"id": check, "comment": comment})
    resource.add_metadata("checkov", {**metadata, "skip": skips})


def entry_problem(resource_type: str, entry: Any) -> str | None:
    """What is wrong with one skip entry on a resource of ``resource_type`` (None: nothing)."""
    if not isinstance(entry, Mapping) or set(entry) != {"id", "comment"}:
        return f"a skip is exactly {{'id', 'comment'}}, not {entry!r}"
    check, comment = entry["id"], entry["comment"]
    if not isinstance(check, str) or not CHECK_ID.fullmatch(check):
        return f"not a checkov AWS check id: {check!r}"
    if check not in CHECKS:
        return f"{check} is not in infra.checkov.CHECKS (add it there with its resource type and title)"
    if CHECKS[check][0] != resource_type:
        return f"{check} runs on {CHECKS[check][0]}, not {resource_type}"
    if not isinstance(comment, str) or len(comment.strip()) < MIN_COMMENT:
        return f"{check}: a skip needs a reason a reviewer can check, not {comment!r}"
    return None


def skips_of(template: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{logical id: [skip, ...]}`` for every resource of a synthesized template that carries checkov skips."""
    found = {}
    for logical_id, resource in template.get("Resources", {}).items():
        entries = resource.get("Metadata", {}).get("checkov", {}).get("skip")
        if entries is not None:
            found[logical_id] = entries
    return found


def template_problems(template: Mapping[str, Any]) -> list[str]:
    """Every malformed, unknown, misplaced, duplicated or unexplained checkov skip in a synthesized template."""
    problems = []
    for logical_id, entries in skips_of(template).items():
        resource_type = template["Resources"][logical_id]["Type"]
        if not isinstance(entries, list):
            problems.append(f"{logical_id}: Metadata.checkov.skip is not a list")
            continue
        ids = [entry.get("id") for entry in entries if isinstance(entry, Mapping)]
        problems += [f"{logical_id}: {i} is skipped twice" for i in sorted(set(ids)) if ids.count(i) > 1]
        for entry in entries:
            problem = entry_problem(resource_type, entry)
            if problem:
                problems.append(f"{logical_id}: {problem}")
    return problems
