"""What people's accounts and the abuse bounds add to the bill each month: the two WAF web ACLs, the user pool,
the budget and the long-poll slots (infra/constructs/api_firewall.py, site.py, accounts.py; lambdas/service/waiting.py).

Fixed charges (the web ACLs and their rules) do not depend on traffic; the WAFs' per-request charge counts every
request they inspect, blocked ones included (a flood is billed at 0.60 USD per million even when refused), and
the user pool bills per monthly active user beyond its free ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.costs.assumptions import CONFIG
from infra.costs.bill import Line
from infra.costs.prices import PRICES, Prices

# Rules in each web ACL as the stack builds them: the API stage's (per-IP rate, IP reputation) and CloudFront's
# (per-IP rate, IP reputation, the common rule set), the latter only in us-east-1 (or given by ARN).
API_ACL_RULES = 2
CLOUDFRONT_ACL_RULES = 3
BUDGETS = 1  # the stack's own (budget_usd)
DAYS_PER_MONTH = 30.4


@dataclass(frozen=True)
class Usage:
    """A month of the public page's traffic: API calls (every one passes the API stage's web ACL), page calls
    through CloudFront (its web ACL sees those and the static files), people active, GETs that long-poll."""

    api_calls_m: float
    cloudfront_requests_m: float
    mau: int
    long_polls_m: float


def month(
    u: Usage, prices: Prices = PRICES, cloudfront_waf: bool = CONFIG.waf, api_waf: bool = CONFIG.api_waf
) -> list[Line]:
    """The lines of one month under ``u``, and their total."""
    lines = []
    if api_waf:
        lines.append(
            Line(
                "WAF on the API stage (regional web ACL)",
                f"1 ACL, {API_ACL_RULES} rules; {u.api_calls_m:g} M requests",
                prices.waf_web_acl_month
                + API_ACL_RULES * prices.waf_rule_month
                + u.api_calls_m * prices.waf_per_million,
            )
        )
    if cloudfront_waf:
        lines.append(
            Line(
                "WAF on CloudFront (us-east-1)",
                f"1 ACL, {CLOUDFRONT_ACL_RULES} rules; {u.cloudfront_requests_m:g} M requests",
                prices.waf_web_acl_month
                + CLOUDFRONT_ACL_RULES * prices.waf_rule_month
                + u.cloudfront_requests_m * prices.waf_per_million,
            )
        )
    billed_mau = max(0, u.mau - prices.cognito_essentials_free_mau)
    lines.append(
        Line(
            "Cognito user pool (Essentials)",
            f"{u.mau:,} MAU, {prices.cognito_essentials_free_mau:,} free",
            billed_mau * prices.cognito_essentials_per_mau,
        )
    )
    lines.append(
        Line(
            "AWS Budgets",
            f"{BUDGETS} budget, {prices.budgets_free} free",
            max(0, BUDGETS - prices.budgets_free) * prices.budget_per_day * DAYS_PER_MONTH,
        )
    )
    lines.append(
        Line(
            "Long-poll slots (a conditional put and a delete per waiting GET)",
            f"{u.long_polls_m:g} M waits, 2 WRU each",
            u.long_polls_m * 2 * prices.ddb_per_million_wru,
        )
    )
    lines.append(Line("Total", "", sum(line.usd for line in lines)))
    return lines


# The two months the docs show: a million recommendation requests (about 2 API calls each, a long-poll for every
# one) with a thousand people signed in; ten million with a hundred thousand.
SCENARIOS = (
    ("1 M requests, 1,000 people", Usage(api_calls_m=2.0, cloudfront_requests_m=3.0, mau=1_000, long_polls_m=1.0)),
    (
        "10 M requests, 100,000 people",
        Usage(api_calls_m=20.0, cloudfront_requests_m=30.0, mau=100_000, long_polls_m=10.0),
    ),
)
