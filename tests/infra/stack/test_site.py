"""The web page in the synthesized template: the site bucket, CloudFront, its viewer function, WAF, logs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from infra.config import OUTPUT_WEB_ACL
from tests.infra.stack.helpers import (
    BLOCK_ALL_PUBLIC,
    SSE_S3,
    api_behavior,
    arn,
    distribution_config,
    origin,
    ref_id,
)


def test_site_bucket_is_private_and_only_the_distribution_reads_it(template, ids):
    """Public access blocked, SSE, TLS only, access-logged; the only reader is CloudFront's service principal, for
    GetObject, and only on behalf of this distribution (OAC, AWS:SourceArn); CDK's auto-delete role may empty it."""
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": BLOCK_ALL_PUBLIC,
            "BucketEncryption": SSE_S3,
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": ids["model_access_logs"]},
                "LogFilePrefix": "site-bucket/",
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    )
    assert "WebsiteConfiguration" not in template.to_json()["Resources"][ids["site_bucket"]]["Properties"]
    (policy,) = template.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": ids["site_bucket"]}}}
    ).values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    cloudfront = [s for s in allows if s["Principal"] == {"Service": "cloudfront.amazonaws.com"}]
    assert cloudfront == [
        {
            "Action": "s3:GetObject",
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":cloudfront::",
                                {"Ref": "AWS::AccountId"},
                                ":distribution/",
                                {"Ref": ids["distribution"]},
                            ],
                        ]
                    }
                }
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Resource": {"Fn::Join": ["", [arn(ids["site_bucket"]), "/*"]]},
        }
    ]
    others = [s for s in allows if s not in cloudfront]
    assert all("CustomS3AutoDeleteObjects" in json.dumps(s["Principal"]) for s in others), others
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    # The S3 origin signs with OAC (no legacy origin access identity, no website endpoint).
    template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": {
                "OriginAccessControlOriginType": "s3",
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
                "Name": Match.any_value(),
            }
        },
    )
    default = distribution_config(template, ids)["DefaultCacheBehavior"]
    s3_origin = origin(template, ids, default["TargetOriginId"])
    assert s3_origin["DomainName"] == {"Fn::GetAtt": [ids["site_bucket"], "RegionalDomainName"]}
    assert s3_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert "OriginAccessControlId" in s3_origin


def test_viewers_reach_the_page_and_the_api_over_https_only(template, ids):
    """The page redirects HTTP to HTTPS and opens at index.html; /api/* refuses HTTP (a redirected POST loses its
    body); only GET and HEAD reach the bucket."""
    config = distribution_config(template, ids)
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    assert api_behavior(template, ids)["ViewerProtocolPolicy"] == "https-only"
    # No custom error pages: they would turn the API's own 404s and 403s into index.html.
    assert "CustomErrorResponses" not in config


def test_every_answer_carries_the_security_headers(template, ids):
    """HSTS (2 years), nosniff, DENY framing, no referrer, and a CSP allowing only the page's own origin; the same
    policy on the page and on /api/*."""
    template.has_resource_properties(
        "AWS::CloudFront::ResponseHeadersPolicy",
        {
            "ResponseHeadersPolicyConfig": Match.object_like(
                {
                    "SecurityHeadersConfig": {
                        "StrictTransportSecurity": {
                            "AccessControlMaxAgeSec": 63072000,
                            "IncludeSubdomains": True,
                            "Override": True,
                        },
                        "ContentTypeOptions": {"Override": True},
                        "FrameOptions": {"FrameOption": "DENY", "Override": True},
                        "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
                        "ContentSecurityPolicy": {"ContentSecurityPolicy": Match.any_value(), "Override": True},
                    }
                }
            )
        },
    )
    ((policy_id, policy),) = template.find_resources("AWS::CloudFront::ResponseHeadersPolicy").items()
    csp = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    directives = dict(d.strip().split(" ", 1) for d in csp["ContentSecurityPolicy"].split(";"))
    assert directives["default-src"] == "'none'"
    for kind in ("script-src", "style-src", "connect-src", "img-src"):
        assert directives[kind] == "'self'", kind
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp["ContentSecurityPolicy"] and "http" not in csp["ContentSecurityPolicy"]
    for behavior in (distribution_config(template, ids)["DefaultCacheBehavior"], api_behavior(template, ids)):
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}


def test_api_behaviour_forwards_to_the_stage_uncached_with_the_key_from_secrets_manager(template, ids):
    """/api/* goes to the REST API's stage over HTTPS (TLS 1.2), every method, no caching, the query string,
    Authorization (a person's token) and Content-Type + Idempotency-Key forwarded (not Host), the /api prefix
    stripped on viewer request, and the API key added by CloudFront as a Secrets Manager dynamic reference, the same
    one the page's API key is created with."""
    behavior = api_behavior(template, ids)
    assert behavior["PathPattern"] == "/api/*"
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    ((cache_id, cache),) = template.find_resources("AWS::CloudFront::CachePolicy").items()
    assert behavior["CachePolicyId"] == {"Ref": cache_id}
    # a person's token reaches the API (the only way CloudFront forwards Authorization), and nothing is cached
    cache = cache["Properties"]["CachePolicyConfig"]
    assert (cache["DefaultTTL"], cache["MinTTL"], cache["MaxTTL"]) == (0, 0, 1)
    key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Authorization"]}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    api_origin = origin(template, ids, behavior["TargetOriginId"])
    assert api_origin["CustomOriginConfig"] == {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"]}
    assert {"Ref": ids["api"]} in api_origin["DomainName"]["Fn::Select"][1]["Fn::Split"][1]["Fn::Join"][1]
    assert api_origin["OriginPath"]["Fn::Join"][1][0] == "/"  # "/" + the stage name taken from the API's URL

    policy_id = behavior["OriginRequestPolicyId"]["Ref"]
    policy = template.find_resources("AWS::CloudFront::OriginRequestPolicy")[policy_id]
    config = policy["Properties"]["OriginRequestPolicyConfig"]
    assert config["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert config["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Content-Type", "Idempotency-Key"]}
    assert config["CookiesConfig"] == {"CookieBehavior": "none"}

    functions = template.find_resources("AWS::CloudFront::Function").items()
    (function_id,) = [k for k, f in functions if "API routes" in f["Properties"]["FunctionConfig"]["Comment"]]
    assert behavior["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]}}
    ]

    reference = {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": ids["key_secret"]}, ":SecretString:::}}"]]}
    assert api_origin["OriginCustomHeaders"] == [{"HeaderName": "x-api-key", "HeaderValue": reference}]
    site_key = template.to_json()["Resources"][ids["site_key"]]["Properties"]
    assert site_key["Value"] == reference
    # The value is generated by Secrets Manager at deploy time; the template holds none.
    secret = template.to_json()["Resources"][ids["key_secret"]]["Properties"]
    assert "SecretString" not in secret
    assert secret["GenerateSecretString"] == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 40}


def run_viewer_function(template, method: str, uri: str, which: str = "API routes") -> dict:
    """One of the stack's CloudFront Functions (by its comment), run in Node on one viewer request; returns what it
    returns."""
    functions = template.find_resources("AWS::CloudFront::Function").values()
    (function,) = [f for f in functions if which in f["Properties"]["FunctionConfig"]["Comment"]]
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    code = function["Properties"]["FunctionCode"]
    event = {"request": {"method": method, "uri": uri, "querystring": {"q": {"value": "alien"}}, "headers": {}}}
    script = f"{code}\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("method", "uri", "expected"),
    [
        ("POST", "/api/recommendations", "/recommendations"),
        ("GET", "/api/recommendations/3f2a-9c", "/recommendations/3f2a-9c"),
        ("GET", "/api/movies", "/movies"),
        ("GET", "/api/model", "/model"),
        ("GET", "/api/openapi.json", "/openapi.json"),
        ("GET", "/api/me", "/me"),
        ("POST", "/api/me/recommendations", "/me/recommendations"),
        ("GET", "/api/me/requests/3f2a-9c", "/me/requests/3f2a-9c"),
        ("POST", "/api/me/events", "/me/events"),
        ("DELETE", "/api/me", "/me"),
    ],
)
def test_viewer_request_function_passes_the_pages_routes_without_the_api_prefix(template, method, uri, expected):
    """The CloudFront Function, run in Node: API Gateway sees its own routes; the query string is left alone."""
    request = run_viewer_function(template, method, uri)
    assert request["uri"] == expected
    assert request["querystring"] == {"q": {"value": "alien"}}


@pytest.mark.parametrize(
    ("method", "uri"),
    [
        ("DELETE", "/api/users/19"),
        ("POST", "/api/events"),  # a person posts their own with /me/events
        ("GET", "/api/users/19"),
        ("GET", "/api/recommendations/a/b"),
        ("GET", "/api/openapiXjson"),
        ("GET", "/api/"),
    ],
)
def test_viewer_request_function_refuses_everything_else_with_a_json_403(template, method, uri):
    """The page's key must not open DELETE /users/{id} or events for any user to anyone on the internet:
    CloudFront answers 403 in the API's error shape, the same message as the local gateway's."""
    from infra.site_routes import refusal

    answer = run_viewer_function(template, method, uri)
    assert answer["statusCode"] == 403
    assert answer["headers"]["content-type"] == {"value": "application/json"}
    assert json.loads(answer["body"]["data"]) == json.loads(refusal(method, uri[4:])[2])
    assert json.loads(answer["body"]["data"])["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "uri", "allow"),
    [
        ("PUT", "/api/recommendations", "POST"),
        ("OPTIONS", "/api/recommendations", "POST"),
        ("HEAD", "/api/model", "GET"),  # API Gateway has no HEAD methods: refused here rather than its own 403
        ("POST", "/api/me", "GET, DELETE"),
        ("DELETE", "/api/recommendations/3f2a-9c", "GET"),
    ],
)
def test_viewer_request_function_answers_another_method_on_a_page_path_with_405_and_allow(template, method, uri, allow):
    """As the API answers an undeclared method: 405, ``Allow``, the same body as the local gateway's."""
    from infra.site_routes import refusal

    answer = run_viewer_function(template, method, uri)
    status, headers, body = refusal(method, uri[4:])
    assert answer["statusCode"] == status == 405
    assert answer["headers"]["allow"] == {"value": allow} and headers == {"Allow": allow}
    assert json.loads(answer["body"]["data"]) == json.loads(body)
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


def site_json(app: cdk.App, template: Template) -> str:
    """The ``site.json`` a BucketDeployment of the stack uploads (one of its source assets holds it)."""
    folder = Path(app.synth().directory)
    keys = [
        k
        for d in template.find_resources("Custom::CDKBucketDeployment").values()
        for k in d["Properties"]["SourceObjectKeys"]
    ]
    (found,) = [p for k in keys if (p := folder / f"asset.{k.removesuffix('.zip')}" / "site.json").exists()]
    return found.read_text()


def test_the_page_is_told_its_user_pools_client(stack, template):
    """site.json names the app client, a deploy-time value: the asset holds CDK's marker, the deployment its value."""
    assert re.fullmatch(r'\{"auth":\{"client_id":<<marker:0x[0-9a-f]+:0>>\}\}', site_json(stack.node.root, template))
    client = stack.resolve(stack.accounts.client.user_pool_client_id)  # {"Ref": <the app client>}
    deployments = template.find_resources("Custom::CDKBucketDeployment").values()
    markers = [m for d in deployments for m in d["Properties"].get("SourceMarkers", []) if m]
    assert [list(m) for m in markers] == [["<<marker:0xbaba:0>>"]]
    assert markers[0]["<<marker:0xbaba:0>>"] == {"Fn::Join": ["", ['"', client, '"']]}


def test_the_pages_sign_in_calls_go_to_the_regional_cognito_endpoint(template, ids):
    """/auth (web/auth.js's Cognito calls) goes to cognito-idp in the stack's region over HTTPS, never cached, with
    its X-Amz-Target and Content-Type; a viewer function sends POST to Cognito's / and refuses other methods."""
    behavior = api_behavior(template, ids, "/auth")
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # managed CachingDisabled
    auth_origin = origin(template, ids, behavior["TargetOriginId"])
    assert auth_origin["DomainName"] == {
        "Fn::Join": ["", ["cognito-idp.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]]
    }
    assert auth_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    policies = template.find_resources("AWS::CloudFront::OriginRequestPolicy")
    config = policies[behavior["OriginRequestPolicyId"]["Ref"]]["Properties"]["OriginRequestPolicyConfig"]
    assert config["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["X-Amz-Target", "Content-Type"]}
    assert run_viewer_function(template, "POST", "/auth", "Cognito")["uri"] == "/"
    assert run_viewer_function(template, "GET", "/auth", "Cognito")["statusCode"] == 405


def test_web_acl_rate_limits_per_ip_with_managed_rules_when_deployed_in_us_east_1(template, ids):
    """A CLOUDFRONT web ACL (condition: AWS::Region is us-east-1): block an IP over 1000 requests in 5 minutes, the
    IP reputation list, the common rule set with its 8 KB body rule counting only; attached to the distribution
    under the same condition, and its ARN an output there."""
    assert template.to_json()["Conditions"][ids["in_us_east_1"]] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
    }
    acl = template.to_json()["Resources"][ids["web_acl"]]
    assert acl["Condition"] == ids["in_us_east_1"]
    props = acl["Properties"]
    assert props["Scope"] == "CLOUDFRONT"
    assert props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in props["Rules"]}
    assert [r["Name"] for r in sorted(props["Rules"], key=lambda r: r["Priority"])] == [
        "RateLimitPerIp",
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
    ]
    assert rules["RateLimitPerIp"]["Action"] == {"Block": {}}
    assert rules["RateLimitPerIp"]["Statement"] == {
        "RateBasedStatement": {"AggregateKeyType": "IP", "Limit": 1000, "EvaluationWindowSec": 300}
    }
    reputation = rules["AWSManagedRulesAmazonIpReputationList"]
    assert reputation["OverrideAction"] == {"None": {}}
    assert reputation["Statement"]["ManagedRuleGroupStatement"] == {
        "VendorName": "AWS",
        "Name": "AWSManagedRulesAmazonIpReputationList",
    }
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in props["Rules"])

    assert distribution_config(template, ids)["WebACLId"] == {
        "Fn::If": [ids["in_us_east_1"], {"Fn::GetAtt": [ids["web_acl"], "Arn"]}, {"Ref": "AWS::NoValue"}]
    }
    template.has_output(
        OUTPUT_WEB_ACL, {"Value": {"Fn::GetAtt": [ids["web_acl"], "Arn"]}, "Condition": ids["in_us_east_1"]}
    )


def test_distribution_logs_to_its_own_bucket_and_uses_the_cheapest_edges(template, ids):
    """Standard logs to an ACL-enabled (CloudFront's log delivery needs ACLs), private, expiring bucket;
    price class 100."""
    config = distribution_config(template, ids)
    assert config["Logging"] == {
        "Bucket": {"Fn::GetAtt": [ids["distribution_logs"], "RegionalDomainName"]},
        "Prefix": "distribution/",
    }
    assert config["PriceClass"] == "PriceClass_100"
    logs_bucket = template.to_json()["Resources"][ids["distribution_logs"]]["Properties"]
    assert logs_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    assert logs_bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert logs_bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90
    # Its own access is logged to the model store's log bucket (the one bucket that logs nowhere).
    assert logs_bucket["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": ids["model_access_logs"]},
        "LogFilePrefix": "distribution-logs-bucket/",
    }


def test_every_bucket_is_versioned_and_its_old_versions_expire(template, stack):
    """The model, site and both log buckets keep overwritten or deleted objects 30 days (recoverable), then drop
    them; log buckets still expire logs after 90 days. The retraining data bucket keeps them a day: a base data
    version rewritten without a forgotten user must not linger."""
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 5
    data = ref_id(stack, stack.retraining.data_bucket)
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        rules = props["LifecycleConfiguration"]["Rules"]
        days = 1 if logical_id == data else 30
        assert {"NoncurrentDays": days} in [r.get("NoncurrentVersionExpiration") for r in rules], logical_id
        if any(r.get("Id") == "expire-logs" for r in rules):
            (rule,) = rules
            assert rule["ExpirationInDays"] == 90
            assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_deploy_syncs_web_into_the_site_bucket_and_invalidates_the_cache(template, ids):
    """web/ is uploaded (pruned: deleted files go), browsers revalidate every load, edges keep a day and are
    invalidated on every deploy."""
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketName": {"Ref": ids["site_bucket"]},
            "Prune": True,
            "DistributionId": {"Ref": ids["distribution"]},
            "DistributionPaths": ["/*"],
            "SystemMetadata": {"cache-control": "max-age=0, s-maxage=86400"},
        },
    )
