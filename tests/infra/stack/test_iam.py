"""Least privilege: the exact grants of the function roles, and the IAM page (docs/iam.md) rendered from them."""

from __future__ import annotations

from infra.iam_report import PAGE_COMMAND, PAGE_PATH, page, unmatched_reasons
from lambdas.settings import EVENTS_BY_TIME_INDEX, Settings
from tests.infra.stack.helpers import ROOT, arn, expect, permissions


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
    """Exactly: logs, X-Ray, consume the queue, get/update items, read models/*, put results/*, read the parameter,
    log lists under their users."""
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
            ("dynamodb:BatchWriteItem",): [arn(ids["events_table"])],  # the list log (lambdas.service.lists)
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
    """Exactly: logs, X-Ray, send to the queue, the requests table item by item (no Scan or Query), on the events
    table the puts, queries and deletes of events, pointers and accounts (no Scan), read results/* (large results),
    get each version's movies.json.gz and manifest.json (no other model file), read the version parameter."""
    bucket = arn(ids["bucket"])
    models = Settings().model_prefix
    table_rw = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
    assert permissions(template, ids["api_role"]) == expect(
        {
            ("logs:CreateLogStream", "logs:PutLogEvents"): [arn(ids["api_logs"])],
            ("xray:PutTraceSegments", "xray:PutTelemetryRecords"): ["*"],
            ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"): [arn(ids["queue"])],
            table_rw: [arn(ids["table"])],
            (
                "dynamodb:PutItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:Query",
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
            ): [arn(ids["events_table"])],
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


# ------------------------------------------------------------------------------------------ the IAM page


def test_the_committed_iam_page_is_what_the_template_says(template):
    """docs/iam.md is rendered from this template (cdk.json's context; the artifact does not matter)."""
    committed = ROOT / PAGE_PATH
    assert committed.exists(), f"{PAGE_PATH} is missing: run `{PAGE_COMMAND}`"
    assert committed.read_text() == page(template.to_json()), f"{PAGE_PATH} is stale: run `{PAGE_COMMAND}`"


def test_the_iam_page_names_every_role_and_resource_and_every_reason_still_applies(template):
    """Each role has its title (none left as a bare logical id), each resource a name (none left as a logical id or
    a raw ARN), and each hand-written reason matches a statement of the template."""
    text = page(template.to_json())
    assert set(template.find_resources("AWS::IAM::Role")) <= {
        line.split("`")[1] for line in text.splitlines() if line.startswith("Role `")
    }
    assert "## Role `" not in text
    assert "(AWS::" not in text and '{"' not in text, (
        "a resource without a name on the IAM page: see infra/iam_report.py"
    )
    assert unmatched_reasons(template.to_json()) == []
