"""The context options: IAM auth, CORS, a given web ACL, a custom domain, the page's key version, WAF off."""

from __future__ import annotations

import re

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import OUTPUT_SITE_URL, OUTPUT_WEB_ACL, ConfigError, StackConfig
from lambdas.settings import ENV_VARS, Settings
from tests.infra.stack.helpers import (
    GIVEN_CERTIFICATE,
    GIVEN_WEB_ACL,
    api_behavior,
    build_stack,
    distribution_config,
    origin,
    ref_id,
)


@pytest.fixture(scope="module")
def iam_template(outdir, fake_artifact) -> Template:
    """The IAM-auth, CORS-enabled, arm64 variant (bundling skipped: only the template matters here)."""
    _, stack = build_stack(
        outdir / "iam",
        fake_artifact,
        auth="iam",
        cors_origins="https://app.example",
        architecture="arm64",
        dead_letter_consumer="false",
        dashboard="false",
        site="false",
        **{"aws:cdk:bundling-stacks": []},
    )
    return Template.from_stack(stack)


def test_iam_auth_option_signs_requests_instead_of_an_api_key(iam_template):
    """-c auth=iam: methods use AWS_IAM, no API key or usage plan; CORS preflight stays anonymous; the personal
    routes keep their Cognito authoriser (a person has a token, not AWS credentials)."""
    methods = iam_template.find_resources("AWS::ApiGateway::Method")
    personal = {name for name, method in methods.items() if "AuthorizerId" in method["Properties"]}
    assert len(personal) == 6
    for name, method in methods.items():
        props = method["Properties"]
        expected = "NONE" if props["HttpMethod"] == "OPTIONS" else "AWS_IAM"
        expected = "COGNITO_USER_POOLS" if name in personal else expected
        assert props["AuthorizationType"] == expected
        assert not props.get("ApiKeyRequired")
    assert iam_template.find_resources("AWS::ApiGateway::ApiKey") == {}
    iam_template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "OPTIONS",
            "Integration": Match.object_like(
                {
                    "IntegrationResponses": [
                        Match.object_like(
                            {
                                "ResponseParameters": Match.object_like(
                                    {"method.response.header.Access-Control-Allow-Origin": "'https://app.example'"}
                                )
                            }
                        )
                    ]
                }
            ),
        },
    )
    iam_template.has_resource_properties("AWS::Lambda::Function", {"Architectures": ["arm64"], "Runtime": "python3.12"})
    assert iam_template.find_resources("AWS::CloudWatch::Dashboard") == {}
    # AND -c site=false: no page, no distribution, no CloudFront web ACL, no key secret (the stage's REGIONAL one
    # stays, with no page key to exempt)
    for kind in ("AWS::CloudFront::Distribution", "AWS::SecretsManager::Secret"):
        assert iam_template.find_resources(kind) == {}
    assert cloudfront_acls(iam_template) == {}
    (regional,) = iam_template.find_resources("AWS::WAFv2::WebACL").values()
    assert "ScopeDownStatement" not in regional["Properties"]["Rules"][0]["Statement"]["RateBasedStatement"]


def cloudfront_acls(template: Template) -> dict:
    """The template's CLOUDFRONT web ACLs (the API stage's REGIONAL one is there in any case)."""
    acls = template.find_resources("AWS::WAFv2::WebACL").items()
    return {k: v for k, v in acls if v["Properties"]["Scope"] == "CLOUDFRONT"}


def test_api_waf_can_be_turned_off(outdir, fake_artifact):
    """-c api_waf=false: no REGIONAL web ACL and no association; cdk-nag's finding is acknowledged instead."""
    _, stack = build_stack(outdir / "noapiwaf", fake_artifact, api_waf="false", **{"aws:cdk:bundling-stacks": []})
    template = Template.from_stack(stack)
    assert set(cloudfront_acls(template)) == set(template.find_resources("AWS::WAFv2::WebACL"))
    assert template.find_resources("AWS::WAFv2::WebACLAssociation") == {}


def test_a_given_web_acl_is_attached_in_any_region_instead_of_creating_one(edge_stack):
    """-c web_acl_arn: no web ACL and no region condition in the template; the distribution uses the given one."""
    template = Template.from_stack(edge_stack)
    assert cloudfront_acls(template) == {}
    assert "Conditions" not in template.to_json()
    config = distribution_config(template, {"distribution": ref_id(edge_stack, edge_stack.site.distribution)})
    assert config["WebACLId"] == GIVEN_WEB_ACL
    template.has_output(OUTPUT_WEB_ACL, {"Value": GIVEN_WEB_ACL})


def test_a_custom_domain_serves_the_page_with_tls_1_2(edge_stack):
    """-c site_domain + site_certificate_arn: the alias, the certificate (SNI) with TLSv1.2_2021 at least, and
    SiteUrl on that domain."""
    template = Template.from_stack(edge_stack)
    config = distribution_config(template, {"distribution": ref_id(edge_stack, edge_stack.site.distribution)})
    assert config["Aliases"] == ["recs.example.org"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": GIVEN_CERTIFICATE,
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    template.has_output(OUTPUT_SITE_URL, {"Value": "https://recs.example.org/"})


def test_site_key_version_replaces_the_secret_and_the_key_together(stack, edge_stack):
    """-c site_key_version=2: new logical ids for the secret and the page's API key (created before the old pair
    is deleted), and both the key and the distribution take the new secret's value."""
    old = {ref_id(stack, stack.site.api_key_secret), ref_id(stack, stack.site.api_key)}
    new_secret, new_key = (
        ref_id(edge_stack, edge_stack.site.api_key_secret),
        ref_id(edge_stack, edge_stack.site.api_key),
    )
    assert not old & {new_secret, new_key}
    template = Template.from_stack(edge_stack)
    assert set(template.find_resources("AWS::SecretsManager::Secret")) == {new_secret}
    reference = {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": new_secret}, ":SecretString:::}}"]]}
    assert template.to_json()["Resources"][new_key]["Properties"]["Value"] == reference
    ids = {"distribution": ref_id(edge_stack, edge_stack.site.distribution)}
    headers = origin(template, ids, api_behavior(template, ids)["TargetOriginId"])["OriginCustomHeaders"]
    assert headers == [{"HeaderName": "x-api-key", "HeaderValue": reference}]


def test_waf_can_be_turned_off(outdir, fake_artifact):
    """-c waf=false: no web ACL, no condition, no WebACLId on the distribution, no WebAclArn output."""
    _, stack = build_stack(outdir / "nowaf", fake_artifact, waf="false", **{"aws:cdk:bundling-stacks": []})
    template = Template.from_stack(stack)
    assert cloudfront_acls(template) == {}
    config = distribution_config(template, {"distribution": ref_id(stack, stack.site.distribution)})
    assert "WebACLId" not in config
    assert OUTPUT_WEB_ACL not in template.to_json()["Outputs"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"auth": "iam"}, "site=false"),
        ({"waf_rate_limit": "9"}, "waf_rate_limit"),
        ({"web_acl_arn": "arn:aws:wafv2:eu-west-1:111122223333:regional/webacl/x/y"}, "CLOUDFRONT-scope"),
        ({"web_acl_arn": GIVEN_WEB_ACL, "waf": "false"}, "waf=false"),
        ({"site_domain": "recs.example.org"}, "go together"),
        (
            {"site_domain": "a.example", "site_certificate_arn": GIVEN_CERTIFICATE.replace("us-east-1", "eu-west-1")},
            "ACM",
        ),
        ({"site_key_version": "0"}, "site_key_version"),
    ],
)
def test_site_options_that_cannot_work_are_refused(context, message):
    """A page with SigV4 auth, a rate limit under WAF's minimum, a regional web ACL, a domain without its us-east-1
    certificate: refused at synth with what to change."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        StackConfig.from_mapping(context)


def api_environment(template: Template) -> dict:
    (function,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "lambdas.api.handler.lambda_handler"}}
    ).values()
    return function["Properties"]["Environment"]["Variables"]


def test_cors_origins_reach_the_api_function_so_its_answers_carry_cors_headers(template, iam_template):
    """-c cors_origins: API Gateway answers the preflight, the function adds the headers to the real answers."""
    var = next(name for name, field in ENV_VARS.items() if field == "cors_allow_origins")
    assert api_environment(iam_template)[var] == "https://app.example"
    assert Settings.from_env(api_environment(iam_template)).cors_origins == ("https://app.example",)
    # AND without cors_origins (cdk.json's default) the variable is not set: CORS stays off
    assert var not in api_environment(template)


def test_context_values_are_typed_and_range_checked():
    """-c values arrive as strings: they are converted, and out-of-range ones are refused."""
    config = StackConfig.from_mapping({"worker_memory_mb": "2048", "retain_data": "true", "cors_origins": "a,b"})
    assert (config.worker_memory_mb, config.retain_data, config.cors_origins) == (2048, True, ("a", "b"))
    for bad in (
        {"max_receive_count": "6"},
        {"auth": "none"},
        {"log_retention_days": "10"},
        {"max_concurrency": "1"},
        {"long_poll_slots": "-1"},
    ):
        with pytest.raises(ConfigError):
            StackConfig.from_mapping(bad)


def test_a_missing_artifact_stops_the_synth(tmp_path):
    """Without -c artifact=none, a missing artifact is an error, never a deploy that serves nothing."""
    with pytest.raises(ConfigError, match="make export"):
        build_stack(tmp_path, tmp_path / "no-such-artifact", **{"aws:cdk:bundling-stacks": []})
