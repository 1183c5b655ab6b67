"""The WAFv2 rules both web ACLs use (the page's CLOUDFRONT one, the API stage's REGIONAL one)."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_wafv2 as wafv2


def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    """CloudWatch metrics and sampled requests under ``name``."""
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def rate_limit_per_ip(
    name: str, priority: int, limit: int, scope_down: wafv2.CfnWebACL.StatementProperty | None = None
) -> wafv2.CfnWebACL.RuleProperty:
    """Block an address past ``limit`` requests in 5 minutes (only requests ``scope_down`` matches count)."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP", limit=limit, evaluation_window_sec=300, scope_down_statement=scope_down
            )
        ),
        visibility_config=visibility(name),
    )


def aws_managed(
    name: str, priority: int, counted: Iterable[str] = (), metric: str | None = None
) -> wafv2.CfnWebACL.RuleProperty:
    """AWS's managed rule group ``name`` (no subscription fee), with the rules in ``counted`` only counting."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in counted
                ]
                or None,
            )
        ),
        visibility_config=visibility(metric or name),
    )
