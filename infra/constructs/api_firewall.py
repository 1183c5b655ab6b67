"""A REGIONAL WAF web ACL on the API's stage, in every region: a per-IP rate limit for the callers that reach the
``execute-api`` endpoint directly, and AWS's IP reputation list.

The web page's calls are exempt from the per-IP limit: they arrive from CloudFront's addresses (so a per-IP count
here would lump many viewers together), carrying the page's key, and they are limited per viewer by the CloudFront
web ACL (us-east-1) and as a whole by the page's usage plan. Everything else (operators' scripts, and anyone trying
keys) is counted by its own address, and blocked past ``rate_limit`` requests in 5 minutes, before API Gateway bills
the call.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra import checkov
from infra.constructs import waf
from infra.site_routes import API_KEY_HEADER


class ApiFirewall(Construct):
    """``web_acl`` (REGIONAL) and its association with ``stage``."""

    def __init__(
        self, scope: Construct, id: str, *, stage: apigw.Stage, rate_limit: int, page_key_value: str | None
    ) -> None:
        super().__init__(scope, id)
        scope_down = None
        if page_key_value is not None:
            from_page = wafv2.CfnWebACL.StatementProperty(
                byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": API_KEY_HEADER}),
                    positional_constraint="EXACTLY",
                    search_string=page_key_value,
                    text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                )
            )
            scope_down = wafv2.CfnWebACL.StatementProperty(
                not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=from_page)
            )
        rules = [
            waf.rate_limit_per_ip("RateLimitPerIp", 0, rate_limit, scope_down),
            waf.aws_managed("AWSManagedRulesAmazonIpReputationList", 1, metric="ApiIpReputation"),
        ]
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="Per-IP rate limit for direct callers of the API stage, and the AWS IP reputation list",
            rules=rules,
            visibility_config=waf.visibility("RecommenderApi"),
        )
        wafv2.CfnWebACLAssociation(self, "Stage", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn)
        checkov.skip(
            self.web_acl,
            "CKV_AWS_192",
            "No Log4j (CVE-2021-44228) rule: nothing behind this web ACL runs Java (API Gateway, Python Lambda "
            "functions); the KnownBadInputs rule group would add $1/month and 200 WCU for no exposure.",
        )
