"""Alarms, outputs and names in the synthesized template."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Match, Template

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
    StackConfig,
)
from tests.infra.stack.helpers import GTE, build_stack


def test_alarms_on_dead_letters_queue_age_worker_errors_throttles_and_api_5xx(template, ids):
    """The five alarms of the request flow, each on the right metric and threshold."""
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


def test_an_alarm_on_the_tables_writes_and_a_monthly_budget(template, ids, outdir, fake_artifact):
    """A flood is seen in the write units both tables consume (the context's threshold per 5 minutes), and the spend
    in a monthly budget (cdk.json's USD 50), which notifies the alarm topic when one is given."""
    alarm = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"Threshold": 100_000, "ComparisonOperator": GTE}}
    )
    ((_, alarm),) = alarm.items()
    metrics = alarm["Properties"]["Metrics"]
    assert [m["Expression"] for m in metrics if "Expression" in m] == ["w0 + w1"]
    tables = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for m in metrics
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "ConsumedWriteCapacityUnits"
    }
    assert tables == {ids["table"], ids["events_table"]}
    template.has_resource_properties(
        "AWS::Budgets::Budget",
        {"Budget": {"BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 50, "Unit": "USD"}}},
    )
    topic = "arn:aws:sns:us-east-1:111111111111:ops"
    context = {"alarm_topic_arn": topic, "aws:cdk:bundling-stacks": []}
    notified = Template.from_stack(build_stack(outdir / "budget", fake_artifact, **context)[1])
    (budget,) = notified.find_resources("AWS::Budgets::Budget").values()
    notes = budget["Properties"]["NotificationsWithSubscribers"]
    assert [(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notes] == [
        ("ACTUAL", 80),
        ("FORECASTED", 100),
    ]
    assert all(n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": topic}] for n in notes)


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
    # AWS's own account of its prebuilt SageMaker images (the retraining job's, -c retrain_image) is not ours
    image_account = StackConfig().retrain_image.split(".")[0]
    assert re.findall(r"\b\d{12}\b", text) in ([], [image_account] * text.count(image_account)), "an account id"
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
