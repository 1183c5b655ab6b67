"""The request queue, its dead-letter queue and the worker and API functions in the synthesized template."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra.config import StackConfig
from lambdas.settings import ENV_VARS, Settings
from tests.infra.stack.helpers import arn


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
        "QUEUE_URL": {"Ref": ids["queue"]},
        "BUCKET_NAME": {"Ref": ids["bucket"]},
        "MODEL_PREFIX": defaults.model_prefix,
        "MODEL_VERSION_PARAMETER": {"Ref": ids["parameter"]},
        "MODEL_VERSION_CACHE_S": "60",
        "RESULTS_PREFIX": defaults.results_prefix,
        "RESULT_TTL_DAYS": "7",
        "MAX_BODY_BYTES": str(defaults.max_body_bytes),
        "PAGE_API_KEY_ID": {"Ref": ids["site_key"]},  # calls with the page's key are anonymous visitors'
        "LONG_POLL_SLOTS": str(StackConfig().long_poll_slots),  # waiting long-polls per pool of callers
    }
