"""The tables (requests/results, users' events): on demand, TTL, point-in-time recovery, AWS-managed encryption."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import checkov
from lambdas.settings import (
    EVENTS_BY_TIME_INDEX,
    EVENTS_INDEX_ATTRIBUTES,
    EVENTS_PARTITION_KEY,
    EVENTS_SORT_KEY,
    EVENTS_TIME_KEY,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
)


class ResultsTable(Construct):
    """One item per request (and per idempotency key); items expire through the ``ttl`` attribute."""

    def __init__(self, scope: Construct, id: str, *, retain_data: bool) -> None:
        super().__init__(scope, id)
        self.table = _table(self, retain_data, PARTITION_KEY)


class EventsTable(Construct):
    """Users' ratings since training: one item per (user, event), a user's newest events one consistent Query of the
    local secondary index by storage time (``lambdas.service.events`` explains the keys); items expire through the
    ``ttl`` attribute. A local index exists only from the table's creation: a stack deployed without it replaces
    this table on update (deploy with ``retain_data`` and copy the old table's items with ``python -m
    infra.events_copy``; docs/deploying.md, "Upgrading a stack deployed before the events index")."""

    def __init__(self, scope: Construct, id: str, *, retain_data: bool) -> None:
        super().__init__(scope, id)
        self.table = _table(self, retain_data, EVENTS_PARTITION_KEY, EVENTS_SORT_KEY)
        self.table.add_local_secondary_index(
            index_name=EVENTS_BY_TIME_INDEX,
            sort_key=dynamodb.Attribute(name=EVENTS_TIME_KEY, type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(EVENTS_INDEX_ATTRIBUTES),
        )

    def grant_newest_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Query on the index by time only (the worker's read of a user's newest events)."""
        arn = f"{self.table.table_arn}/index/{EVENTS_BY_TIME_INDEX}"
        return iam.Grant.add_to_principal(grantee=grantee, actions=["dynamodb:Query"], resource_arns=[arn])

    def grant_table(self, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
        """``actions`` on the table itself, none on its index."""
        return iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[self.table.table_arn])


def _table(scope: Construct, retain_data: bool, partition_key: str, sort_key: str | None = None) -> dynamodb.Table:
    string = dynamodb.AttributeType.STRING
    table = dynamodb.Table(
        scope,
        "Table",
        partition_key=dynamodb.Attribute(name=partition_key, type=string),
        sort_key=dynamodb.Attribute(name=sort_key, type=string) if sort_key else None,
        # Traffic is bursty and small: pay per request, nothing at rest but storage.
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=TTL_ATTRIBUTE,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        # AWS-managed KMS key: encryption visible in the template and in CloudTrail, no monthly key fee.
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY,
        deletion_protection=retain_data,
    )
    checkov.skip(
        table,
        "CKV_AWS_119",
        "Encrypted with DynamoDB's AWS-managed KMS key (aws/dynamodb): KMS-backed and logged in CloudTrail, with "
        "no monthly key fee. A customer-managed key ($1/month plus requests) would add only a key policy of our "
        "own; nothing here needs one (no cross-account access; every grant names this table).",
    )
    return table
