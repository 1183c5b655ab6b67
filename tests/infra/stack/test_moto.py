"""The template created by CloudFormation on moto, and publish_model through its outputs."""

from __future__ import annotations

import json

import pytest

from infra.config import OUTPUT_BUCKET, OUTPUT_MODEL_PARAMETER, OUTPUT_QUEUE, OUTPUT_TABLE
from lambdas.settings import PARTITION_KEY


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
