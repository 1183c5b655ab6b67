"""The synthesized CloudFormation of the recommender stack: wiring, limits, least privilege, cdk-nag, packaging."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra import checkov
from infra.config import (
    OUTPUT_API_KEY_ID,
    OUTPUT_API_URL,
    OUTPUT_BUCKET,
    OUTPUT_DLQ,
    OUTPUT_EVENTS_TABLE,
    OUTPUT_MODEL_PARAMETER,
    OUTPUT_QUEUE,
    OUTPUT_SITE_URL,
    OUTPUT_TABLE,
    OUTPUT_WEB_ACL,
    ConfigError,
    StackConfig,
    cdk_json_context,
)
from infra.stack import RecommenderStack
from lambdas.settings import (
    ENV_VARS,
    EVENTS_BY_TIME_INDEX,
    EVENTS_INDEX_ATTRIBUTES,
    EVENTS_PARTITION_KEY,
    EVENTS_SORT_KEY,
    EVENTS_TIME_KEY,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    Settings,
)

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def outdir(tmp_path_factory) -> Path:
    """One cloud-assembly folder for the module: the bundled assets are built once and reused."""
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="module")
def stack(outdir, fake_artifact) -> RecommenderStack:
    return build_stack(outdir, fake_artifact)[1]


@pytest.fixture(scope="module")
def template(stack) -> Template:
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
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


def asset_dir(outdir: Path, template: Template, function_id: str) -> Path:
    key = template.to_json()["Resources"][function_id]["Properties"]["Code"]["S3Key"]
    return outdir / f"asset.{key.removesuffix('.zip')}"


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


# ------------------------------------------------------------------------------------------ queue and worker


def test_queue_is_encrypted_long_polled_and_outlasts_six_worker_timeouts(template, ids):
    """The request queue: SSE-SQS, 20 s long polling, visibility = 6 x the worker timeout, DLQ after 3 receives."""
    worker_timeout = template.to_json()["Resources"][ids["worker"]]["Properties"]["Timeout"]
    assert worker_timeout == 30
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "SqsManagedSseEnabled": True,
            "ReceiveMessageWaitTimeSeconds": 20,
            "VisibilityTimeout": 6 * worker_timeout,
            "RedrivePolicy": {"deadLetterTargetArn": arn(ids["dlq"]), "maxReceiveCount": 3},
        },
    )
    assert Settings(worker_timeout_s=worker_timeout).queue_visibility_timeout_s == 6 * worker_timeout


def test_dead_letter_queue_keeps_messages_14_days(template):
    """The DLQ is encrypted and keeps dead letters for 14 days."""
    template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 86400}
    )


def test_queues_refuse_plain_http(template, ids):
    """Both queue policies deny requests without TLS."""
    for queue in ("queue", "dlq"):
        template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": ids[queue]}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                    )
                },
            },
        )


def test_worker_event_source_batches_with_partial_failures_and_capped_concurrency(template, ids):
    """Batch size, no batching window (it would add up to its length to every request), ReportBatchItemFailures
    and max concurrency on the SQS event source."""
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": arn(ids["queue"]),
            "FunctionName": {"Ref": ids["worker"]},
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": Match.absent(),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 5},
        },
    )


def test_dead_letters_are_consumed_to_mark_requests_failed(template, ids):
    """A small consumer on the DLQ runs the worker package's dlq_handler."""
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "lambdas.worker.handler.dlq_handler", "MemorySize": 256}
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"EventSourceArn": arn(ids["dlq"]), "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )


def test_worker_function_sizing_tracing_and_logs(template, ids):
    """1024 MB, 30 s, Python 3.12 on x86_64, X-Ray active, its own log group kept 30 days."""
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.worker.handler.lambda_handler",
            "Runtime": "python3.12",
            "Architectures": ["x86_64"],
            "MemorySize": 1024,
            "Timeout": 30,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": {"Ref": ids["worker_logs"]}},
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_the_api_function_outlasts_a_long_poll_within_api_gateways_limit(template, ids):
    """Timeout 25 s: a 20 s long-poll plus its final read, under API Gateway's 29 s integration timeout."""
    timeout = template.to_json()["Resources"][ids["api_function"]]["Properties"]["Timeout"]
    assert 20 < timeout < 29


def test_a_missing_api_key_gets_the_apis_own_error_shape(template):
    """INVALID_API_KEY answers 403 {"error": {"code": "forbidden", ...}}, as the local gateway does."""
    template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {"ResponseType": "INVALID_API_KEY", "StatusCode": "403", "ResponseTemplates": Match.any_value()},
    )
    found = [
        r["Properties"]["ResponseTemplates"]["application/json"]
        for r in template.find_resources("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "INVALID_API_KEY"
    ]
    assert json.loads(found[0])["error"]["code"] == "forbidden"


def test_worker_environment_names_come_from_the_settings_module(template, ids):
    """The worker is configured through lambdas.settings' variable names; its model version comes from SSM."""
    env = template.to_json()["Resources"][ids["worker"]]["Properties"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == {"Ref": ids["table"]}
    assert env["EVENTS_TABLE_NAME"] == {"Ref": ids["events_table"]}
    assert env["BUCKET_NAME"] == {"Ref": ids["bucket"]}
    assert env["MODEL_VERSION_PARAMETER"] == {"Ref": ids["parameter"]}
    assert env["MODEL_VERSION_CACHE_S"] == "60"
    assert "MODEL_VERSION" not in env, "a version baked into the function would outlive publish_model"
    assert env["MAX_RECEIVE_COUNT"] == "3"
    assert env["WORKER_TIMEOUT_S"] == "30"
    assert {k for k in env if not k.startswith("POWERTOOLS_")} <= set(ENV_VARS)


def test_api_function_environment(template, ids):
    """Exactly: the table, the queue URL, the bucket and its prefixes, the served-version parameter and its cache
    time (for the movie index and the model card), the limits; never a model version baked in."""
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "lambdas.api.handler.lambda_handler", "MemorySize": 512, "TracingConfig": {"Mode": "Active"}},
    )
    env = template.to_json()["Resources"][ids["api_function"]]["Properties"]["Environment"]["Variables"]
    defaults = Settings()
    assert {k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")} == {
        "TABLE_NAME": {"Ref": ids["table"]},
        "EVENTS_TABLE_NAME": {"Ref": ids["events_table"]},
        "EVENTS_TTL_DAYS": str(defaults.events_ttl_days),
        "QUEUE_URL": {"Ref": ids["queue"]},
        "BUCKET_NAME": {"Ref": ids["bucket"]},
        "MODEL_PREFIX": defaults.model_prefix,
        "MODEL_VERSION_PARAMETER": {"Ref": ids["parameter"]},
        "MODEL_VERSION_CACHE_S": "60",
        "RESULTS_PREFIX": defaults.results_prefix,
        "RESULT_TTL_DAYS": "7",
        "MAX_BODY_BYTES": str(defaults.max_body_bytes),
    }


# ------------------------------------------------------------------------------------------ table and bucket


def test_table_is_on_demand_with_ttl_pitr_and_encryption(template):
    """Pay per request, TTL on the settings' attribute, point-in-time recovery, KMS (AWS-managed) encryption."""
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_events_table_has_the_user_as_partition_and_the_event_as_sort_key(template, ids):
    """A user's events are one Query; the same protections as the requests table."""
    table = template.to_json()["Resources"][ids["events_table"]]
    assert table["Properties"]["KeySchema"] == [
        {"AttributeName": EVENTS_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": EVENTS_SORT_KEY, "KeyType": "RANGE"},
    ]
    # the newest events of a user: a local index by storage time (local, so its reads are consistent), the one the
    # local stack creates
    from infra.local.resources import EVENTS_INDEXES

    assert table["Properties"]["LocalSecondaryIndexes"] == EVENTS_INDEXES
    assert [i["IndexName"] for i in EVENTS_INDEXES] == [EVENTS_BY_TIME_INDEX]
    assert EVENTS_INDEXES[0]["KeySchema"] == [
        {"AttributeName": EVENTS_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": EVENTS_TIME_KEY, "KeyType": "RANGE"},
    ]
    assert EVENTS_INDEXES[0]["Projection"]["NonKeyAttributes"] == list(EVENTS_INDEX_ATTRIBUTES)
    assert {"AttributeName": EVENTS_TIME_KEY, "AttributeType": "N"} in table["Properties"]["AttributeDefinitions"]
    for name, value in {
        "BillingMode": "PAY_PER_REQUEST",
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }.items():
        assert table["Properties"][name] == value


def test_model_bucket_is_versioned_private_logged_with_lifecycle(template, ids):
    """Versioning, all public access blocked, SSE, access logs, old versions and stale results expire."""
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": BLOCK_ALL_PUBLIC,
            "BucketEncryption": SSE_S3,
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "model-bucket/"}),
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "Status": "Enabled"}),
                        Match.object_like(
                            {
                                "Prefix": Settings().results_prefix,
                                "ExpirationInDays": 8,
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                                "Status": "Enabled",
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_model_bucket_policy_denies_plain_http(template, ids):
    """The bucket policy denies every request made without TLS."""
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": ids["bucket"]},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_deploy_uploads_the_artifact_and_initialises_the_version_parameter(template, ids, fake_artifact):
    """The artifact goes to models/<version>/ (nothing pruned) before the parameter names that version."""
    version = json.loads((fake_artifact / "manifest.json").read_text())["model_version"]
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketName": {"Ref": ids["bucket"]},
            "DestinationBucketKeyPrefix": f"{Settings().model_prefix}{version}/",
            "Prune": False,
        },
    )
    template.has_resource_properties("AWS::SSM::Parameter", {"Type": "String", "Value": version})
    parameter = template.to_json()["Resources"][ids["parameter"]]
    deployments = template.find_resources(
        "Custom::CDKBucketDeployment", {"Properties": {"DestinationBucketName": {"Ref": ids["bucket"]}}}
    )
    assert deployments and set(deployments) <= set(parameter["DependsOn"])


# ------------------------------------------------------------------------------------------ least privilege


def parameter_arn(logical_id: str) -> dict:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ssm:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":parameter/",
                {"Ref": logical_id},
            ],
        ]
    }


def test_worker_reads_the_model_and_writes_results_nothing_more(template, ids):
    """Exactly: logs, X-Ray, consume the queue, get/update items, read models/*, put results/*, read the parameter."""
    bucket = arn(ids["bucket"])
    prefix = {"models": Settings().model_prefix, "results": Settings().results_prefix}
    parameter = parameter_arn(ids["parameter"])
    assert permissions(template, ids["worker_role"]) == expect(
        {
            ("logs:CreateLogStream", "logs:PutLogEvents"): [arn(ids["worker_logs"])],
            ("xray:PutTraceSegments", "xray:PutTelemetryRecords"): ["*"],
            (
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueUrl",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ): [arn(ids["queue"])],
            ("dynamodb:GetItem", "dynamodb:UpdateItem"): [arn(ids["table"])],
            ("dynamodb:Query",): [{"Fn::Join": ["", [arn(ids["events_table"]), f"/index/{EVENTS_BY_TIME_INDEX}"]]}],
            ("s3:DeleteObject",): [{"Fn::Join": ["", [bucket, f"/{prefix['results']}*"]]}],
            ("s3:GetObject*", "s3:GetBucket*", "s3:List*"): [
                bucket,
                {"Fn::Join": ["", [bucket, f"/{prefix['models']}*"]]},
            ],
            (
                "s3:PutObject",
                "s3:PutObjectLegalHold",
                "s3:PutObjectRetention",
                "s3:PutObjectTagging",
                "s3:PutObjectVersionTagging",
                "s3:Abort*",
            ): [{"Fn::Join": ["", [bucket, f"/{prefix['results']}*"]]}],
            (
                "ssm:DescribeParameters",
                "ssm:GetParameters",
                "ssm:GetParameter",
                "ssm:GetParameterHistory",
            ): [parameter],
        }
    )


def test_api_sends_to_the_queue_and_reads_writes_the_table_nothing_more(template, ids):
    """Exactly: logs, X-Ray, send to the queue, read/write the table, read results/* (large results), get each
    version's movies.json.gz and manifest.json (no other model file), read the version parameter."""
    bucket = arn(ids["bucket"])
    models = Settings().model_prefix
    table_rw = (
        "dynamodb:BatchGetItem",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:ConditionCheckItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:DescribeTable",
    )
    assert permissions(template, ids["api_role"]) == expect(
        {
            ("logs:CreateLogStream", "logs:PutLogEvents"): [arn(ids["api_logs"])],
            ("xray:PutTraceSegments", "xray:PutTelemetryRecords"): ["*"],
            ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"): [arn(ids["queue"])],
            table_rw: [arn(ids["table"])],
            ("dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:Query"): [arn(ids["events_table"])],
            ("s3:DeleteObject",): [{"Fn::Join": ["", [bucket, f"/{Settings().results_prefix}*"]]}],
            ("s3:GetObject*", "s3:GetBucket*", "s3:List*"): [
                bucket,
                {"Fn::Join": ["", [bucket, f"/{Settings().results_prefix}*"]]},
            ],
            ("s3:GetObject",): [
                {"Fn::Join": ["", [bucket, f"/{models}*/movies.json.gz"]]},
                {"Fn::Join": ["", [bucket, f"/{models}*/manifest.json"]]},
            ],
            (
                "ssm:DescribeParameters",
                "ssm:GetParameters",
                "ssm:GetParameter",
                "ssm:GetParameterHistory",
            ): [parameter_arn(ids["parameter"])],
        }
    )


def test_dead_letter_consumer_only_updates_items(template, ids):
    """Exactly: logs, X-Ray, consume the DLQ, update items."""
    assert permissions(template, ids["dlq_worker_role"]) == expect(
        {
            ("logs:CreateLogStream", "logs:PutLogEvents"): [arn(ids["dlq_worker_logs"])],
            ("xray:PutTraceSegments", "xray:PutTelemetryRecords"): ["*"],
            (
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueUrl",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ): [arn(ids["dlq"])],
            ("dynamodb:UpdateItem",): [arn(ids["table"])],
        }
    )


# ------------------------------------------------------------------------------------------ API


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


def test_every_method_requires_the_api_key(template):
    """Every route, the page's new GET /movies and GET /model too, needs the key (no anonymous method, no CORS
    preflight) and reaches the API function through the Lambda proxy integration."""
    found = routes(template)
    assert set(found) == {
        "POST /recommendations",
        "GET /recommendations/{request_id}",
        "POST /events",
        "DELETE /users/{user_id}",
        "GET /movies",
        "GET /model",
        "GET /openapi.json",
    }
    for route, props in found.items():
        assert props["ApiKeyRequired"] is True, route
        assert props["Integration"]["Type"] == "AWS_PROXY", route
    # /movies: the handler checks q, genres, limit and offset; the edge declares nothing it would refuse.
    assert "RequestParameters" not in found["GET /movies"]


def test_usage_plan_throttles_the_generated_api_key(template, ids, stack):
    """The usage plan carries the context's rate and burst; it holds the CLI clients' key, generated by API Gateway,
    and the web page's key (each key gets the plan's throttle on its own)."""
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": 50, "BurstLimit": 100},
            "ApiStages": [Match.object_like({"ApiId": {"Ref": ids["api"]}})],
        },
    )
    keys = template.find_resources("AWS::ApiGateway::ApiKey")
    cli_key = ref_id(stack, stack.api.api_key)
    assert set(keys) == {cli_key, ids["site_key"]}
    assert "Value" not in keys[cli_key]["Properties"]
    bound = {k["Properties"]["KeyId"]["Ref"] for k in template.find_resources("AWS::ApiGateway::UsagePlanKey").values()}
    assert bound == {cli_key, ids["site_key"]}


def test_stage_has_access_logs_throttling_and_tracing(template, ids):
    """Access logs to CloudWatch, method throttling from context, error-level logging without bodies, X-Ray."""
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("status")},
            "MethodSettings": [
                Match.object_like(
                    {
                        "HttpMethod": "*",
                        "ResourcePath": "/*",
                        "LoggingLevel": "ERROR",
                        "DataTraceEnabled": False,
                        "ThrottlingRateLimit": 50,
                        "ThrottlingBurstLimit": 100,
                    }
                )
            ],
        },
    )
    (stage,) = template.find_resources("AWS::ApiGateway::Stage").values()
    assert ids["access_logs"] in json.dumps(stage["Properties"]["AccessLogSetting"]["DestinationArn"])


def test_requests_are_validated_at_the_edge(template, ids):
    """POST bodies must parse as JSON, GET needs its path parameter; the validator checks both."""
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "RequestValidatorId": Match.any_value(),
            "RequestModels": {"application/json": Match.any_value()},
            "Integration": Match.object_like({"Type": "AWS_PROXY"}),
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "GET",
            "RequestValidatorId": Match.any_value(),
            "RequestParameters": {"method.request.path.request_id": True},
        },
    )


def test_gateway_errors_use_the_handler_error_shape(template):
    """API Gateway's own 4xx/5xx answers are {"error": {"code", "message"}} like the handler's."""
    template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "BAD_REQUEST_BODY",
            "StatusCode": "400",
            "ResponseTemplates": {"application/json": Match.string_like_regexp('"code":"invalid_json"')},
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {"ResponseType": "DEFAULT_4XX", "ResponseTemplates": {"application/json": Match.string_like_regexp("error")}},
    )


# ------------------------------------------------------------------------------------------ web page (CloudFront)


def distribution_config(template: Template, ids: dict[str, str]) -> dict:
    return template.to_json()["Resources"][ids["distribution"]]["Properties"]["DistributionConfig"]


def api_behavior(template: Template, ids: dict[str, str]) -> dict:
    (behavior,) = distribution_config(template, ids)["CacheBehaviors"]
    return behavior


def origin(template: Template, ids: dict[str, str], origin_id: str) -> dict:
    (found,) = [o for o in distribution_config(template, ids)["Origins"] if o["Id"] == origin_id]
    return found


def test_site_bucket_is_private_and_only_the_distribution_reads_it(template, ids):
    """Public access blocked, SSE, TLS only, access-logged; the only reader is CloudFront's service principal, for
    GetObject, and only on behalf of this distribution (OAC, AWS:SourceArn); CDK's auto-delete role may empty it."""
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": BLOCK_ALL_PUBLIC,
            "BucketEncryption": SSE_S3,
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": ids["model_access_logs"]},
                "LogFilePrefix": "site-bucket/",
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    )
    assert "WebsiteConfiguration" not in template.to_json()["Resources"][ids["site_bucket"]]["Properties"]
    (policy,) = template.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": ids["site_bucket"]}}}
    ).values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    cloudfront = [s for s in allows if s["Principal"] == {"Service": "cloudfront.amazonaws.com"}]
    assert cloudfront == [
        {
            "Action": "s3:GetObject",
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":cloudfront::",
                                {"Ref": "AWS::AccountId"},
                                ":distribution/",
                                {"Ref": ids["distribution"]},
                            ],
                        ]
                    }
                }
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Resource": {"Fn::Join": ["", [arn(ids["site_bucket"]), "/*"]]},
        }
    ]
    others = [s for s in allows if s not in cloudfront]
    assert all("CustomS3AutoDeleteObjects" in json.dumps(s["Principal"]) for s in others), others
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    # The S3 origin signs with OAC (no legacy origin access identity, no website endpoint).
    template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": {
                "OriginAccessControlOriginType": "s3",
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
                "Name": Match.any_value(),
            }
        },
    )
    default = distribution_config(template, ids)["DefaultCacheBehavior"]
    s3_origin = origin(template, ids, default["TargetOriginId"])
    assert s3_origin["DomainName"] == {"Fn::GetAtt": [ids["site_bucket"], "RegionalDomainName"]}
    assert s3_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert "OriginAccessControlId" in s3_origin


def test_viewers_reach_the_page_and_the_api_over_https_only(template, ids):
    """The page redirects HTTP to HTTPS and opens at index.html; /api/* refuses HTTP (a redirected POST loses its
    body); only GET and HEAD reach the bucket."""
    config = distribution_config(template, ids)
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    assert api_behavior(template, ids)["ViewerProtocolPolicy"] == "https-only"
    # No custom error pages: they would turn the API's own 404s and 403s into index.html.
    assert "CustomErrorResponses" not in config


def test_every_answer_carries_the_security_headers(template, ids):
    """HSTS (2 years), nosniff, DENY framing, no referrer, and a CSP allowing only the page's own origin; the same
    policy on the page and on /api/*."""
    template.has_resource_properties(
        "AWS::CloudFront::ResponseHeadersPolicy",
        {
            "ResponseHeadersPolicyConfig": Match.object_like(
                {
                    "SecurityHeadersConfig": {
                        "StrictTransportSecurity": {
                            "AccessControlMaxAgeSec": 63072000,
                            "IncludeSubdomains": True,
                            "Override": True,
                        },
                        "ContentTypeOptions": {"Override": True},
                        "FrameOptions": {"FrameOption": "DENY", "Override": True},
                        "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
                        "ContentSecurityPolicy": {"ContentSecurityPolicy": Match.any_value(), "Override": True},
                    }
                }
            )
        },
    )
    ((policy_id, policy),) = template.find_resources("AWS::CloudFront::ResponseHeadersPolicy").items()
    csp = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    directives = dict(d.strip().split(" ", 1) for d in csp["ContentSecurityPolicy"].split(";"))
    assert directives["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "connect-src", "img-src"):
        assert directives[kind] == "'self'", kind
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp["ContentSecurityPolicy"] and "http" not in csp["ContentSecurityPolicy"]
    for behavior in (distribution_config(template, ids)["DefaultCacheBehavior"], api_behavior(template, ids)):
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}


def test_api_behaviour_forwards_to_the_stage_uncached_with_the_key_from_secrets_manager(template, ids):
    """/api/* goes to the REST API's stage over HTTPS (TLS 1.2), every method, no caching, the query string and
    Content-Type + Idempotency-Key forwarded (not Host), the /api prefix stripped on viewer request, and the API key
    added by CloudFront as a Secrets Manager dynamic reference, the same one the page's API key is created with."""
    behavior = api_behavior(template, ids)
    assert behavior["PathPattern"] == "/api/*"
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # managed CachingDisabled
    api_origin = origin(template, ids, behavior["TargetOriginId"])
    assert api_origin["CustomOriginConfig"] == {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"]}
    assert {"Ref": ids["api"]} in api_origin["DomainName"]["Fn::Select"][1]["Fn::Split"][1]["Fn::Join"][1]
    assert api_origin["OriginPath"]["Fn::Join"][1][0] == "/"  # "/" + the stage name taken from the API's URL

    ((policy_id, policy),) = template.find_resources("AWS::CloudFront::OriginRequestPolicy").items()
    assert behavior["OriginRequestPolicyId"] == {"Ref": policy_id}
    config = policy["Properties"]["OriginRequestPolicyConfig"]
    assert config["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert config["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Content-Type", "Idempotency-Key"]}
    assert config["CookiesConfig"] == {"CookieBehavior": "none"}

    (function_id,) = template.find_resources("AWS::CloudFront::Function")
    assert behavior["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]}}
    ]

    reference = {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": ids["key_secret"]}, ":SecretString:::}}"]]}
    assert api_origin["OriginCustomHeaders"] == [{"HeaderName": "x-api-key", "HeaderValue": reference}]
    site_key = template.to_json()["Resources"][ids["site_key"]]["Properties"]
    assert site_key["Value"] == reference
    # The value is generated by Secrets Manager at deploy time; the template holds none.
    secret = template.to_json()["Resources"][ids["key_secret"]]["Properties"]
    assert "SecretString" not in secret
    assert secret["GenerateSecretString"] == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 40}


def run_viewer_function(template, method: str, uri: str) -> dict:
    """The stack's CloudFront Function, run in Node on one viewer request; returns what it returns."""
    (function,) = template.find_resources("AWS::CloudFront::Function").values()
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    code = function["Properties"]["FunctionCode"]
    event = {"request": {"method": method, "uri": uri, "querystring": {"q": {"value": "alien"}}, "headers": {}}}
    script = f"{code}\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("method", "uri", "expected"),
    [
        ("POST", "/api/recommendations", "/recommendations"),
        ("GET", "/api/recommendations/3f2a-9c", "/recommendations/3f2a-9c"),
        ("GET", "/api/movies", "/movies"),
        ("GET", "/api/model", "/model"),
        ("GET", "/api/openapi.json", "/openapi.json"),
    ],
)
def test_viewer_request_function_passes_the_pages_routes_without_the_api_prefix(template, method, uri, expected):
    """The CloudFront Function, run in Node: API Gateway sees its own routes; the query string is left alone."""
    request = run_viewer_function(template, method, uri)
    assert request["uri"] == expected
    assert request["querystring"] == {"q": {"value": "alien"}}


@pytest.mark.parametrize(
    ("method", "uri"),
    [
        ("DELETE", "/api/users/19"),
        ("POST", "/api/events"),  # site_events is off by default
        ("GET", "/api/users/19"),
        ("PUT", "/api/recommendations"),
        ("OPTIONS", "/api/recommendations"),
        ("HEAD", "/api/model"),  # API Gateway has no HEAD methods: refused here rather than its own 403
        ("GET", "/api/recommendations/a/b"),
        ("GET", "/api/openapiXjson"),
        ("GET", "/api/"),
    ],
)
def test_viewer_request_function_refuses_everything_else_with_a_json_403(template, method, uri):
    """The page's key must not open DELETE /users/{id} (or events, unless site_events) to anyone on the internet:
    CloudFront answers 403 in the API's error shape, the same message as the local gateway's."""
    from infra.site_routes import refusal_message

    answer = run_viewer_function(template, method, uri)
    assert answer["statusCode"] == 403
    assert answer["headers"]["content-type"] == {"value": "application/json"}
    body = json.loads(answer["body"]["data"])
    assert body == {"error": {"code": "forbidden", "message": refusal_message(method, uri[4:])}}


def site_json(app: cdk.App, template: Template) -> dict:
    """The ``site.json`` a BucketDeployment of the stack uploads (one of its source assets holds it)."""
    folder = Path(app.synth().directory)
    keys = [
        k
        for d in template.find_resources("Custom::CDKBucketDeployment").values()
        for k in d["Properties"]["SourceObjectKeys"]
    ]
    (found,) = [p for k in keys if (p := folder / f"asset.{k.removesuffix('.zip')}" / "site.json").exists()]
    return json.loads(found.read_text())


def test_the_page_is_told_it_may_not_post_events_by_default(stack, template):
    assert site_json(stack.node.root, template) == {"events": False}


def test_site_events_opens_post_events_to_the_page_and_says_so_in_site_json(outdir, fake_artifact):
    app, stack = build_stack(
        outdir / "site-events", fake_artifact, site_events="true", **{"aws:cdk:bundling-stacks": []}
    )
    template = Template.from_stack(stack)
    assert run_viewer_function(template, "POST", "/api/events")["uri"] == "/events"
    assert run_viewer_function(template, "DELETE", "/api/users/19")["statusCode"] == 403
    assert site_json(app, template) == {"events": True}


def test_web_acl_rate_limits_per_ip_with_managed_rules_when_deployed_in_us_east_1(template, ids):
    """A CLOUDFRONT web ACL (condition: AWS::Region is us-east-1): block an IP over 1000 requests in 5 minutes, the
    IP reputation list, the common rule set with its 8 KB body rule counting only; attached to the distribution
    under the same condition, and its ARN an output there."""
    assert template.to_json()["Conditions"][ids["in_us_east_1"]] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
    }
    acl = template.to_json()["Resources"][ids["web_acl"]]
    assert acl["Condition"] == ids["in_us_east_1"]
    props = acl["Properties"]
    assert props["Scope"] == "CLOUDFRONT"
    assert props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in props["Rules"]}
    assert [r["Name"] for r in sorted(props["Rules"], key=lambda r: r["Priority"])] == [
        "RateLimitPerIp",
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
    ]
    assert rules["RateLimitPerIp"]["Action"] == {"Block": {}}
    assert rules["RateLimitPerIp"]["Statement"] == {
        "RateBasedStatement": {"AggregateKeyType": "IP", "Limit": 1000, "EvaluationWindowSec": 300}
    }
    reputation = rules["AWSManagedRulesAmazonIpReputationList"]
    assert reputation["OverrideAction"] == {"None": {}}
    assert reputation["Statement"]["ManagedRuleGroupStatement"] == {
        "VendorName": "AWS",
        "Name": "AWSManagedRulesAmazonIpReputationList",
    }
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in props["Rules"])

    assert distribution_config(template, ids)["WebACLId"] == {
        "Fn::If": [ids["in_us_east_1"], {"Fn::GetAtt": [ids["web_acl"], "Arn"]}, {"Ref": "AWS::NoValue"}]
    }
    template.has_output(
        OUTPUT_WEB_ACL, {"Value": {"Fn::GetAtt": [ids["web_acl"], "Arn"]}, "Condition": ids["in_us_east_1"]}
    )


def test_distribution_logs_to_its_own_bucket_and_uses_the_cheapest_edges(template, ids):
    """Standard logs to an ACL-enabled (CloudFront's log delivery needs ACLs), private, expiring bucket;
    price class 100."""
    config = distribution_config(template, ids)
    assert config["Logging"] == {
        "Bucket": {"Fn::GetAtt": [ids["distribution_logs"], "RegionalDomainName"]},
        "Prefix": "distribution/",
    }
    assert config["PriceClass"] == "PriceClass_100"
    logs_bucket = template.to_json()["Resources"][ids["distribution_logs"]]["Properties"]
    assert logs_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    assert logs_bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert logs_bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90
    # Its own access is logged to the model store's log bucket (the one bucket that logs nowhere).
    assert logs_bucket["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": ids["model_access_logs"]},
        "LogFilePrefix": "distribution-logs-bucket/",
    }


def test_every_bucket_is_versioned_and_its_old_versions_expire(template):
    """The model, site and both log buckets keep overwritten or deleted objects 30 days (recoverable), then drop
    them; log buckets still expire logs after 90 days."""
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 4
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        rules = props["LifecycleConfiguration"]["Rules"]
        assert {"NoncurrentDays": 30} in [r.get("NoncurrentVersionExpiration") for r in rules], logical_id
        if any(r.get("Id") == "expire-logs" for r in rules):
            (rule,) = rules
            assert rule["ExpirationInDays"] == 90
            assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_deploy_syncs_web_into_the_site_bucket_and_invalidates_the_cache(template, ids):
    """web/ is uploaded (pruned: deleted files go), browsers revalidate every load, edges keep a day and are
    invalidated on every deploy."""
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketName": {"Ref": ids["site_bucket"]},
            "Prune": True,
            "DistributionId": {"Ref": ids["distribution"]},
            "DistributionPaths": ["/*"],
            "SystemMetadata": {"cache-control": "max-age=0, s-maxage=86400"},
        },
    )


# ------------------------------------------------------------------------------------------ monitoring, outputs


def test_alarms_on_dead_letters_queue_age_worker_errors_throttles_and_api_5xx(template, ids):
    """The five alarms, each on the right metric and threshold."""
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Threshold": 1,
            "ComparisonOperator": GTE,
            "Metrics": Match.array_with([Match.object_like({"Expression": "MAX([visible, received])"})]),
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Namespace": "AWS/SQS",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [ids["queue"], "QueueName"]}}],
            "Threshold": 300,
            "ComparisonOperator": GTE,
        },
    )
    for metric in ("Errors", "Throttles"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": metric,
                "Namespace": "AWS/Lambda",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": ids["worker"]}}],
                "Statistic": "Sum",
                "Threshold": 1,
                "ComparisonOperator": GTE,
            },
        )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "5XXError", "Namespace": "AWS/ApiGateway", "Threshold": 1, "ComparisonOperator": GTE},
    )
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardBody": Match.any_value()})


def test_outputs_name_what_clients_and_publish_model_need(template, ids):
    """API URL, API key id, table, queue, DLQ, bucket, the model parameter and the page's URL are stack outputs."""
    for key in (
        OUTPUT_API_URL,
        OUTPUT_API_KEY_ID,
        OUTPUT_TABLE,
        OUTPUT_EVENTS_TABLE,
        OUTPUT_QUEUE,
        OUTPUT_DLQ,
        OUTPUT_BUCKET,
        OUTPUT_MODEL_PARAMETER,
    ):
        template.has_output(key, {"Value": Match.any_value()})
    template.has_output(
        OUTPUT_SITE_URL,
        {"Value": {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [ids["distribution"], "DomainName"]}, "/"]]}},
    )


def test_no_hard_coded_names_accounts_or_regions(template):
    """Physical names are generated; no account id or region is written into the template; CloudFront's names,
    unique per account rather than per region, start with the deploying region."""
    named = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::IAM::Role": "RoleName",
        "AWS::SSM::Parameter": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::CloudWatch::Alarm": "AlarmName",
        "AWS::CloudWatch::Dashboard": "DashboardName",
    }
    for kind, prop in named.items():
        for resource in template.find_resources(kind).values():
            assert prop not in resource.get("Properties", {}), f"{kind} has a hard-coded {prop}"
    # The web ACL's condition compares AWS::Region with us-east-1 (where CloudFront web ACLs live): not a setting.
    body = template.to_json()
    text = json.dumps({"Resources": body["Resources"], "Outputs": body["Outputs"]})
    assert not re.search(r"\b\d{12}\b", text), "an account id is hard-coded"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text), "a region is hard-coded"
    account_wide = {
        "AWS::CloudFront::ResponseHeadersPolicy": ("ResponseHeadersPolicyConfig", "Name"),
        "AWS::CloudFront::OriginRequestPolicy": ("OriginRequestPolicyConfig", "Name"),
        "AWS::CloudFront::OriginAccessControl": ("OriginAccessControlConfig", "Name"),
        "AWS::CloudFront::Function": ("Name",),
    }
    for kind, keys in account_wide.items():
        for resource in template.find_resources(kind).values():
            name = resource["Properties"]
            for key in keys:
                name = name[key]
            assert name["Fn::Join"][1][0] == {"Ref": "AWS::Region"}, kind


# ------------------------------------------------------------------------------------------ options


@pytest.fixture(scope="module")
def iam_template(outdir, fake_artifact) -> Template:
    """The IAM-auth, CORS-enabled, arm64 variant (bundling skipped: only the template matters here)."""
    _, stack = build_stack(
        outdir / "iam",
        fake_artifact,
        auth="iam",
        cors_origins="https://app.example",
        architecture="arm64",
        dead_letter_consumer="false",
        dashboard="false",
        site="false",
        **{"aws:cdk:bundling-stacks": []},
    )
    return Template.from_stack(stack)


def test_iam_auth_option_signs_requests_instead_of_an_api_key(iam_template):
    """-c auth=iam: methods use AWS_IAM, no API key or usage plan; CORS preflight stays anonymous."""
    methods = iam_template.find_resources("AWS::ApiGateway::Method").values()
    for method in methods:
        props = method["Properties"]
        expected = "NONE" if props["HttpMethod"] == "OPTIONS" else "AWS_IAM"
        assert props["AuthorizationType"] == expected
        assert not props.get("ApiKeyRequired")
    assert iam_template.find_resources("AWS::ApiGateway::ApiKey") == {}
    iam_template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "OPTIONS",
            "Integration": Match.object_like(
                {
                    "IntegrationResponses": [
                        Match.object_like(
                            {
                                "ResponseParameters": Match.object_like(
                                    {"method.response.header.Access-Control-Allow-Origin": "'https://app.example'"}
                                )
                            }
                        )
                    ]
                }
            ),
        },
    )
    iam_template.has_resource_properties("AWS::Lambda::Function", {"Architectures": ["arm64"], "Runtime": "python3.12"})
    assert iam_template.find_resources("AWS::CloudWatch::Dashboard") == {}
    # AND -c site=false: no page, no distribution, no web ACL, no key secret
    for kind in ("AWS::CloudFront::Distribution", "AWS::WAFv2::WebACL", "AWS::SecretsManager::Secret"):
        assert iam_template.find_resources(kind) == {}


GIVEN_WEB_ACL = "arn:aws:wafv2:us-east-1:111122223333:global/webacl/edge/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
GIVEN_CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
EDGE_CONTEXT = {
    "web_acl_arn": GIVEN_WEB_ACL,
    "site_domain": "recs.example.org",
    "site_certificate_arn": GIVEN_CERTIFICATE,
    "site_key_version": "2",
}


@pytest.fixture(scope="module")
def edge_stack(outdir, fake_artifact) -> RecommenderStack:
    """An existing web ACL (any region), a custom domain with its certificate, the page's key replaced once."""
    return build_stack(outdir / "edge", fake_artifact, **EDGE_CONTEXT, **{"aws:cdk:bundling-stacks": []})[1]


def test_a_given_web_acl_is_attached_in_any_region_instead_of_creating_one(edge_stack):
    """-c web_acl_arn: no web ACL and no region condition in the template; the distribution uses the given one."""
    template = Template.from_stack(edge_stack)
    assert template.find_resources("AWS::WAFv2::WebACL") == {}
    assert "Conditions" not in template.to_json()
    config = distribution_config(template, {"distribution": ref_id(edge_stack, edge_stack.site.distribution)})
    assert config["WebACLId"] == GIVEN_WEB_ACL
    template.has_output(OUTPUT_WEB_ACL, {"Value": GIVEN_WEB_ACL})


def test_a_custom_domain_serves_the_page_with_tls_1_2(edge_stack):
    """-c site_domain + site_certificate_arn: the alias, the certificate (SNI) with TLSv1.2_2021 at least, and
    SiteUrl on that domain."""
    template = Template.from_stack(edge_stack)
    config = distribution_config(template, {"distribution": ref_id(edge_stack, edge_stack.site.distribution)})
    assert config["Aliases"] == ["recs.example.org"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": GIVEN_CERTIFICATE,
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    template.has_output(OUTPUT_SITE_URL, {"Value": "https://recs.example.org/"})


def test_site_key_version_replaces_the_secret_and_the_key_together(stack, edge_stack):
    """-c site_key_version=2: new logical ids for the secret and the page's API key (created before the old pair
    is deleted), and both the key and the distribution take the new secret's value."""
    old = {ref_id(stack, stack.site.api_key_secret), ref_id(stack, stack.site.api_key)}
    new_secret, new_key = (
        ref_id(edge_stack, edge_stack.site.api_key_secret),
        ref_id(edge_stack, edge_stack.site.api_key),
    )
    assert not old & {new_secret, new_key}
    template = Template.from_stack(edge_stack)
    assert set(template.find_resources("AWS::SecretsManager::Secret")) == {new_secret}
    reference = {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": new_secret}, ":SecretString:::}}"]]}
    assert template.to_json()["Resources"][new_key]["Properties"]["Value"] == reference
    ids = {"distribution": ref_id(edge_stack, edge_stack.site.distribution)}
    headers = origin(template, ids, api_behavior(template, ids)["TargetOriginId"])["OriginCustomHeaders"]
    assert headers == [{"HeaderName": "x-api-key", "HeaderValue": reference}]


def test_waf_can_be_turned_off(outdir, fake_artifact):
    """-c waf=false: no web ACL, no condition, no WebACLId on the distribution, no WebAclArn output."""
    _, stack = build_stack(outdir / "nowaf", fake_artifact, waf="false", **{"aws:cdk:bundling-stacks": []})
    template = Template.from_stack(stack)
    assert template.find_resources("AWS::WAFv2::WebACL") == {}
    config = distribution_config(template, {"distribution": ref_id(stack, stack.site.distribution)})
    assert "WebACLId" not in config
    assert OUTPUT_WEB_ACL not in template.to_json()["Outputs"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"auth": "iam"}, "site=false"),
        ({"waf_rate_limit": "9"}, "waf_rate_limit"),
        ({"web_acl_arn": "arn:aws:wafv2:eu-west-1:111122223333:regional/webacl/x/y"}, "CLOUDFRONT-scope"),
        ({"web_acl_arn": GIVEN_WEB_ACL, "waf": "false"}, "waf=false"),
        ({"site_domain": "recs.example.org"}, "go together"),
        (
            {"site_domain": "a.example", "site_certificate_arn": GIVEN_CERTIFICATE.replace("us-east-1", "eu-west-1")},
            "ACM",
        ),
        ({"site_key_version": "0"}, "site_key_version"),
    ],
)
def test_site_options_that_cannot_work_are_refused(context, message):
    """A page with SigV4 auth, a rate limit under WAF's minimum, a regional web ACL, a domain without its us-east-1
    certificate: refused at synth with what to change."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        StackConfig.from_mapping(context)


def api_environment(template: Template) -> dict:
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "lambdas.api.handler.lambda_handler"}}
    ).values()
    return function["Properties"]["Environment"]["Variables"]


def test_cors_origins_reach_the_api_function_so_its_answers_carry_cors_headers(template, iam_template):
    """-c cors_origins: API Gateway answers the preflight, the function adds the headers to the real answers."""
    var = next(name for name, field in ENV_VARS.items() if field == "cors_allow_origins")
    assert api_environment(iam_template)[var] == "https://app.example"
    assert Settings.from_env(api_environment(iam_template)).cors_origins == ("https://app.example",)
    # AND without cors_origins (cdk.json's default) the variable is not set: CORS stays off
    assert var not in api_environment(template)


def test_context_values_are_typed_and_range_checked():
    """-c values arrive as strings: they are converted, and out-of-range ones are refused."""
    config = StackConfig.from_mapping({"worker_memory_mb": "2048", "retain_data": "true", "cors_origins": "a,b"})
    assert (config.worker_memory_mb, config.retain_data, config.cors_origins) == (2048, True, ("a", "b"))
    for bad in ({"max_receive_count": "6"}, {"auth": "none"}, {"log_retention_days": "10"}, {"max_concurrency": "1"}):
        with pytest.raises(ConfigError):
            StackConfig.from_mapping(bad)


def test_a_missing_artifact_stops_the_synth(tmp_path):
    """Without -c artifact=none, a missing artifact is an error, never a deploy that serves nothing."""
    with pytest.raises(ConfigError, match="make export"):
        build_stack(tmp_path, tmp_path / "no-such-artifact", **{"aws:cdk:bundling-stacks": []})


# ------------------------------------------------------------------------------------------ cdk-nag


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


# ------------------------------------------------------------------------------------------ checkov


def checkov_skips(template: dict) -> set[tuple[str, str]]:
    """``{(resource type, check id)}`` of every checkov skip in a synthesized template."""
    resources = template["Resources"]
    return {
        (resources[logical_id]["Type"], entry["id"])
        for logical_id, entries in checkov.skips_of(template).items()
        for entry in entries
    }


@pytest.mark.parametrize(
    "context",
    [{}, {"waf": "false"}, EDGE_CONTEXT, {"auth": "iam", "site": "false"}, {"artifact": "none"}],
    ids=["defaults", "no-waf", "given-web-acl-custom-domain", "iam-no-site", "no-artifact"],
)
def test_checkov_skips_name_known_checks_on_their_resource_types_with_a_reason(outdir, fake_artifact, context, request):
    """Every checkov skip in the template (Metadata.checkov.skip, which `python -m infra.scan` honours) names a check
    of infra.checkov.CHECKS, sits on the resource type that check runs on, once, with a reason; checkov itself runs
    outside pytest (its own venv, `make scan`)."""
    context = dict(context)
    artifact = None if context.pop("artifact", None) == "none" else fake_artifact
    folder = outdir / f"checkov-{request.node.callspec.id}"
    _, stack = build_stack(folder, artifact, **context, **{"aws:cdk:bundling-stacks": []})
    template = Template.from_stack(stack).to_json()
    assert checkov.template_problems(template) == []
    skipped = checkov_skips(template)
    assert ("AWS::Lambda::Function", "CKV_AWS_117") in skipped
    # Fixed, never skipped: every bucket is versioned (CKV_AWS_21), and only the access-log bucket logs nowhere.
    assert not any(check == "CKV_AWS_21" for _, check in skipped)
    unlogged = [i for i, entries in checkov.skips_of(template).items() for e in entries if e["id"] == "CKV_AWS_18"]
    assert unlogged == [ref_id(stack, stack.model_store.access_logs)]
    assert (("AWS::CloudFront::Distribution", "CKV_AWS_68") in skipped) == (context.get("waf") == "false")


def test_checkov_skips_follow_the_options(template, edge_stack):
    """Skips only where the finding exists: the TLS one only with the default certificate, the Log4j one only on
    a web ACL the stack creates."""
    default = checkov_skips(template.to_json())
    edge = checkov_skips(Template.from_stack(edge_stack).to_json())
    assert ("AWS::CloudFront::Distribution", "CKV_AWS_174") in default
    assert ("AWS::CloudFront::Distribution", "CKV_AWS_174") not in edge
    assert ("AWS::WAFv2::WebACL", "CKV_AWS_192") in default
    assert ("AWS::WAFv2::WebACL", "CKV_AWS_192") not in edge


def test_checkov_skip_check_is_live():
    """The template check reports a skip without a reason, an id that is not a checkov id, an id outside CHECKS, a
    check on the wrong resource type, a duplicate and a malformed entry (so an empty list above means something)."""
    reason = "A reason long enough to be one, saying why this finding does not apply here."
    template = {
        "Resources": {
            "NoReason": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27"}]}}},
            "EmptyReason": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": " "}]}},
            },
            "BadId": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_XX", "comment": reason}]}},
            },
            "Unknown": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_999", "comment": reason}]}},
            },
            "WrongType": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_117", "comment": reason}]}},
            },
            "Twice": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": reason}] * 2}},
            },
            "NotAList": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": "CKV_AWS_27"}}},
            "Fine": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": reason}]}},
            },
            "None": {"Type": "AWS::SQS::Queue", "Properties": {}},
        }
    }
    problems = checkov.template_problems(template)
    flagged = {problem.split(":")[0] for problem in problems}
    assert flagged == {"NoReason", "EmptyReason", "BadId", "Unknown", "WrongType", "Twice", "NotAList"}, problems


def test_checkov_skip_helper_refuses_what_the_template_check_would(tmp_path):
    """infra.checkov.skip fails at synth on an unknown id, a short reason, a wrong resource type or a second skip
    of one check, and merges a resource's skips into one list."""
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Skips")
    bucket = s3.Bucket(stack, "Bucket")
    reason = "A reason long enough to be one, saying why this finding does not apply here."
    for check, comment in (("CKV_AWS_XX", reason), ("CKV_AWS_999", reason), ("CKV_AWS_18", "n/a")):
        with pytest.raises(ValueError):
            checkov.skip(bucket, check, comment)
    with pytest.raises(ValueError, match="runs on AWS::Lambda::Function"):
        checkov.skip(bucket, "CKV_AWS_117", reason)
    checkov.skip(bucket, "CKV_AWS_18", reason)
    with pytest.raises(ValueError, match="already skipped"):
        checkov.skip(bucket.node.default_child, "CKV_AWS_18", reason)
    function = cdk.CfnResource(stack, "Function", type="AWS::Lambda::Function")
    checkov.skip(function, "CKV_AWS_115", reason)
    checkov.skip(function, "CKV_AWS_117", reason)
    assert checkov.skips_of(Template.from_stack(stack).to_json()) == {
        ref_id(stack, bucket): [{"id": "CKV_AWS_18", "comment": reason}],
        stack.resolve(stack.get_logical_id(function)): [
            {"id": "CKV_AWS_115", "comment": reason},
            {"id": "CKV_AWS_117", "comment": reason},
        ],
    }


# ------------------------------------------------------------------------------------------ packaging


def test_worker_asset_has_no_training_stack_and_fits_lambda(outdir, template, ids):
    """The bundled worker: onnxruntime + numpy for cp312 x86_64, no TensorFlow/Keras/pandas, well under 250 MB."""
    path = asset_dir(outdir, template, ids["worker"])
    top = {p.name.lower() for p in path.iterdir()}
    assert not top & {"tensorflow", "keras", "tf_keras", "pandas", "tensorboard", "torch"}
    assert {"onnxruntime", "numpy", "pydantic_core", "aws_lambda_powertools", "lambdas", "contract"} <= top
    assert (path / "lambdas" / "worker" / "handler.py").exists()
    assert not (path / "model").exists(), "the model comes from S3, not the code package"
    native = {p.name for p in (path / "pydantic_core").glob("*.so")}
    assert any("cpython-312-x86_64-linux-gnu" in n for n in native), native
    assert dir_mb(path) < LAMBDA_UNZIPPED_LIMIT_MB * 0.6


def test_api_asset_leaves_the_model_dependencies_out(outdir, template, ids):
    """The API package has the handlers and pydantic but neither numpy nor onnxruntime."""
    path = asset_dir(outdir, template, ids["api_function"])
    top = {p.name.lower() for p in path.iterdir()}
    assert not top & {"numpy", "onnxruntime"}
    assert {"pydantic", "aws_lambda_powertools", "lambdas", "contract"} <= top
    assert dir_mb(path) < 40


def test_api_handler_imports_without_numpy_or_onnxruntime():
    """What the API package lacks is never imported by the API handler."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'numpy', 'onnxruntime', 'tensorflow', 'keras', 'pandas'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import lambdas.api.handler\n"
    )
    env = {"PATH": "", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------ moto CloudFormation


def moto_compatible(template: dict) -> dict:
    """The template minus what moto cannot create: CDK's custom resources (their Lambda code runs only in Docker
    under moto), CloudWatch alarms and dashboards, CloudFront and WAF (no moto CloudFormation support: an output's
    GetAtt on them fails), and the outputs naming them; SSM parameters get a name (moto cannot generate one)."""
    template = json.loads(json.dumps(template))
    resources = template["Resources"]
    unsupported = ("Custom::", "AWS::CloudWatch::", "AWS::CloudFront::", "AWS::WAFv2::")
    dropped = {k for k, v in resources.items() if v["Type"].startswith(unsupported)}
    for key in dropped:
        del resources[key]
    for resource in resources.values():
        if isinstance(resource.get("DependsOn"), list):
            resource["DependsOn"] = [d for d in resource["DependsOn"] if d not in dropped]
        if resource["Type"] == "AWS::SSM::Parameter":
            resource["Properties"]["Name"] = "recommender-model-version"
    template["Outputs"] = {k: v for k, v in template["Outputs"].items() if not any(d in json.dumps(v) for d in dropped)}
    return template


@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_template_creates_in_moto_and_publish_model_finds_it(moto_aws, template, fake_artifact):
    """CloudFormation (moto) creates the queue pair, functions, event sources, table, bucket and API from the
    template; publish_model then publishes through the stack's outputs."""
    import boto3

    from infra import publish_model

    account = boto3.client("sts").get_caller_identity()["Account"]
    assets = f"cdk-hnb659fds-assets-{account}-us-east-1"
    boto3.client("s3").create_bucket(Bucket=assets)
    boto3.client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
    for resource in template.find_resources("AWS::Lambda::Function").values():
        boto3.client("s3").put_object(Bucket=assets, Key=resource["Properties"]["Code"]["S3Key"], Body=b"PK")
    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName="Recs", TemplateBody=json.dumps(moto_compatible(template.to_json())))
    stack = cfn.describe_stacks(StackName="Recs")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=outputs[OUTPUT_QUEUE], AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "180"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3
    table = boto3.client("dynamodb").describe_table(TableName=outputs[OUTPUT_TABLE])["Table"]
    assert table["KeySchema"] == [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}]
    functions = {f["Handler"]: f for f in boto3.client("lambda").list_functions()["Functions"]}
    assert functions["lambdas.worker.handler.lambda_handler"]["MemorySize"] == 1024
    mappings = boto3.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert {m["BatchSize"] for m in mappings} == {10}
    assert boto3.client("apigateway").get_rest_apis()["items"]

    assert publish_model.main(["--artifact", str(fake_artifact), "--stack", "Recs"]) == 0
    version = json.loads((fake_artifact / "manifest.json").read_text())["model_version"]
    value = boto3.client("ssm").get_parameter(Name=outputs[OUTPUT_MODEL_PARAMETER])["Parameter"]["Value"]
    assert value == version
    keys = boto3.client("s3").list_objects_v2(Bucket=outputs[OUTPUT_BUCKET])["Contents"]
    assert f"models/{version}/manifest.json" in {k["Key"] for k in keys}
