"""The results and events tables, the model bucket and the deploy's upload in the synthesized template."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from lambdas.settings import (
    EVENTS_BY_TIME_INDEX,
    EVENTS_INDEX_ATTRIBUTES,
    EVENTS_PARTITION_KEY,
    EVENTS_SORT_KEY,
    EVENTS_TIME_KEY,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    Settings,
)
from tests.infra.stack.helpers import BLOCK_ALL_PUBLIC, SSE_S3


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
