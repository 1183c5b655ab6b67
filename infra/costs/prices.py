"""AWS list prices (us-east-1, USD) that the cost model applies, and where each was read.

``PRICES`` holds the numbers, ``SOURCES`` the page each came from, the day it was read (``READ_ON``) and whether
the stored text carried the number itself; ``tiered`` prices a quantity under a tier table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices in USD (first tier unless a tier table is given); sources in ``SOURCES``."""

    # API Gateway REST API, per million calls: first 333 M a month, next 667 M, next 19 B, beyond (tiers as pairs of
    # (millions of calls in the tier, price per million)). Source: API Gateway pricing page / AWS whitepaper table.
    apigw_rest_tiers: tuple[tuple[float, float], ...] = ((333, 3.50), (667, 2.80), (19_000, 2.38), (math.inf, 1.51))
    # Lambda: per million requests (both architectures) and per GB-second, first tier (6 B / 7.5 B GB-s a month).
    lambda_per_million_requests: float = 0.20
    lambda_gb_s_x86: float = 0.0000166667
    lambda_gb_s_arm: float = 0.0000133334
    # SQS standard queue, per million requests (first 100 B a month); each 64 KB chunk of a payload is one request.
    sqs_per_million: float = 0.40
    sqs_chunk_kb: float = 64.0
    # DynamoDB on demand, after the November 2024 cut (halved from 1.25 / 0.25): per million write / read request units.
    ddb_per_million_wru: float = 0.625
    ddb_per_million_rru: float = 0.125
    # DynamoDB Standard table storage per GB-month (beyond 25 GB free) and point-in-time recovery per GB-month.
    ddb_storage_gb_month: float = 0.25
    ddb_pitr_gb_month: float = 0.20  # UNVERIFIED: not found in the stored pages; the value we believe
    # S3 Standard requests, per 1,000.
    s3_put_per_1000: float = 0.005
    s3_get_per_1000: float = 0.0004
    # CloudWatch Logs standard ingestion per GB (Lambda logs are tiered since May 2025; this is the first tier).
    logs_ingest_per_gb: float = 0.50
    # X-Ray, per million traces recorded.
    xray_per_million_traces: float = 5.00
    # Amazon Personalize (custom solutions, recipes other than the -v2 ones): real-time recommendations per TPS-hour
    # by monthly tier (TPS-hours in the tier, price), training per training hour, data ingestion per GB.
    personalize_tps_hour_tiers: tuple[tuple[float, float], ...] = ((20_000, 0.20), (180_000, 0.10), (math.inf, 0.05))
    personalize_training_hour: float = 0.24
    personalize_ingest_per_gb: float = 0.05
    # The retraining loop: SageMaker Training on-demand per instance-hour, Step Functions standard per 1,000 state
    # transitions, EventBridge Scheduler per million invocations, S3 Standard storage per GB-month.
    sagemaker_training_hour: tuple[tuple[str, float], ...] = (("ml.m5.xlarge", 0.23), ("ml.g5.xlarge", 1.408))
    sfn_per_1000_transitions: float = 0.025
    scheduler_per_million: float = 1.00
    s3_storage_gb_month: float = 0.023
    # Accounts and abuse bounds: AWS WAF per web ACL-month, per rule-month (a managed rule group counts as one), per
    # million requests inspected; Cognito user pools (Essentials, the stack's feature plan) per monthly active user
    # beyond the free ones; AWS Budgets, per budget-day beyond the free ones.
    waf_web_acl_month: float = 5.00
    waf_rule_month: float = 1.00
    waf_per_million: float = 0.60
    cognito_essentials_free_mau: int = 10_000
    cognito_essentials_per_mau: float = 0.015
    budgets_free: int = 2
    budget_per_day: float = 0.02

    def lambda_gb_s(self, architecture: str) -> float:
        """The per-GB-second price of ``x86_64`` or ``arm64``."""
        return self.lambda_gb_s_arm if architecture == "arm64" else self.lambda_gb_s_x86


PRICES = Prices()


@dataclass(frozen=True)
class Source:
    """Where a price comes from, when it was read, and whether the stored text carried the number itself."""

    item: str
    value: str
    where: str
    verified: bool
    note: str = ""


READ_ON = "2026-12-02"
SOURCES: tuple[Source, ...] = (
    Source(
        "API Gateway REST, per million calls",
        "3.50 (first 333 M), 2.80, 2.38, 1.51",
        "AWS whitepaper 'Best Practices for Designing Amazon API Gateway Private APIs', Cost optimization, table 4 "
        "(docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
        "cost-optimization.html); aws.amazon.com/api-gateway/pricing/",
        True,
    ),
    Source(
        "Lambda, per million requests / per GB-s x86 / arm64",
        "0.20 / 0.0000166667 / 0.0000133334",
        "aws.amazon.com/lambda/pricing/ (rates rendered client-side; the stored copy shows 0.20/M and 0.00001667 in "
        "its examples); Lambda's own rate table in artillery's lib/platform/aws-lambda/prices.js (x86 1666670, arm "
        "1333340 per 1e-11); cloudchipr.com 'AWS Lambda Pricing' (tiers)",
        True,
        "1 ms billing granularity; INIT (cold start) billed for ZIP/managed runtimes since 2025-08-01 (AWS Compute "
        "Blog 'AWS Lambda standardizes billing for INIT phase')",
    ),
    Source(
        "SQS standard, per million requests",
        "0.40 (first 100 B); 64 KB chunks",
        "cloudburn.io 'Amazon SQS Pricing' (March 2026); factualminds.com 'Amazon SQS Pricing: The 64 KB Rule' "
        "(June 2026); the AWS page text was not in the store",
        False,
        "third-party, consistent; empty receives count",
    ),
    Source(
        "DynamoDB on demand, per million WRU / RRU",
        "0.625 / 0.125",
        "airbyte.com 'Amazon DynamoDB Pricing' (July 2025: 'after the 50% reduction ... late 2024'); jusdb.com "
        "(Aug 2025: effective 2024-11-01); unit rules from aws.amazon.com/dynamodb/pricing/on-demand",
        False,
        "third-party for the numbers; AWS for 1 WRU per 1 KB, 1 RRU per 4 KB strongly consistent, x2 in transactions",
    ),
    Source(
        "DynamoDB storage / PITR, per GB-month",
        "0.25 / 0.20",
        "aws.amazon.com/dynamodb/pricing/ (storage: 'prices start from $0.25 per GB-month'); PITR not found",
        False,
        "PITR value unverified",
    ),
    Source(
        "S3 Standard PUT / GET, per 1,000",
        "0.005 / 0.0004",
        "c3x.dev 'S3 request fees explained'; cloudkaramchari.com",
        False,
        "third-party; used only for results over 350 KB",
    ),
    Source(
        "CloudWatch Logs ingestion, per GB",
        "0.50",
        "duckbillgroup.com (Lambda logs tiering, May 2025: first tier 0.50 in us-east-1); c3x.dev (June 2026)",
        False,
        "third-party",
    ),
    Source(
        "X-Ray, per million traces recorded",
        "5.00; default sampling 1/s + 5%",
        "aws.amazon.com/de/xray/pricing/ (5 USD per million recorded, 100,000 free); tsypuk.github.io (default rule)",
        True,
    ),
    Source(
        "Personalize real-time, per TPS-hour",
        "0.20 (first 20,000 TPS-h/month), 0.10 (next 180,000), 0.05 (over 200,000)",
        "a public cost playbook for Amazon Personalize on GitHub ('Last Updated: July 2026'); the AWS page "
        "(aws.amazon.com/personalize/pricing/) was stored only in German, without numbers",
        False,
        "billing unit and minimum (1 TPS per active campaign, max(min, actual) per 5 minutes) from the AWS "
        "CreateCampaign API reference",
    ),
    Source(
        "Personalize training hour / ingestion per GB",
        "0.24 / 0.05",
        "same playbook",
        False,
    ),
    Source(
        "SageMaker Training ml.m5.xlarge / ml.g5.xlarge, per hour",
        "0.23 / 1.408",
        "not found in the stored pages: the values we believe for us-east-1 on-demand training",
        False,
        "UNVERIFIED",
    ),
    Source(
        "Step Functions standard per 1,000 transitions / Scheduler per million / S3 Standard per GB-month",
        "0.025 / 1.00 / 0.023",
        "not found in the stored pages: the list prices we believe (Scheduler: 14 M invocations a month free)",
        False,
        "UNVERIFIED",
    ),
    Source(
        "AWS WAF per web ACL-month / rule-month / million requests",
        "5.00 / 1.00 / 0.60",
        "c3x.dev 'AWS WAF cost explained'; awsnegotiations.com 'AWS WAF Pricing Strategy' (2026); the AWS blog "
        "'Cost-effective ways for securing your web applications using AWS WAF' (the model, without the numbers)",
        False,
        "third-party, consistent; blocked requests are inspected (billed) too; the AWS managed groups used here "
        "(IP reputation, common rule set) carry no subscription fee",
    ),
    Source(
        "Cognito user pools, Essentials, per MAU",
        "0.015 beyond 10,000 MAU",
        "not found in the stored pages: the AWS page (German, Japanese copies) states the older 50,000-MAU free tier "
        "without the feature plans' numbers; c3x.dev and awsnegotiations.com describe the Essentials tier's free band",
        False,
        "UNVERIFIED; a user counts once a month whatever it does (sign-in, token refresh, sign-up)",
    ),
    Source(
        "AWS Budgets, per budget-day",
        "0.02 beyond the first two budgets",
        "docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/budgets-managing-costs.html ('Your first two active "
        "budgets are free of charge. Each additional active budget costs $0.02 per day')",
        True,
    ),
    Source(
        "Personalize User-Personalization-v2",
        "not found",
        "docs.aws.amazon.com/personalize/latest/dg/native-recipe-user-personalization-v2.html says it 'uses a "
        "different pricing model than other recipes'; the numbers were not in the stored pages",
        False,
        "not modelled",
    ),
)


def tiered(quantity: float, tiers: Sequence[tuple[float, float]]) -> float:
    """The price of ``quantity`` units under ``(units in the tier, price per unit)`` tiers, cheapest last."""
    total, left = 0.0, quantity
    for size, price in tiers:
        used = min(left, size)
        total += used * price
        left -= used
        if left <= 0:
            break
    return total
