"""The checkov skips the stack writes into its template (infra/checkov.py)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra import checkov
from tests.infra.stack.helpers import EDGE_CONTEXT, build_stack, ref_id


def checkov_skips(template: dict) -> set[tuple[str, str]]:
    """``{(resource type, check id)}`` of every checkov skip in a synthesized template."""
    resources = template["Resources"]
    return {
        (resources[logical_id]["Type"], entry["id"])
        for logical_id, entries in checkov.skips_of(template).items()
        for entry in entries
    }


@pytest.mark.parametrize(
    "context",
    [{}, {"waf": "false"}, EDGE_CONTEXT, {"auth": "iam", "site": "false"}, {"artifact": "none"}],
    ids=["defaults", "no-waf", "given-web-acl-custom-domain", "iam-no-site", "no-artifact"],
)
def test_checkov_skips_name_known_checks_on_their_resource_types_with_a_reason(outdir, fake_artifact, context, request):
    """Every checkov skip in the template (Metadata.checkov.skip, which `python -m infra.scan` honours) names a check
    of infra.checkov.CHECKS, sits on the resource type that check runs on, once, with a reason; checkov itself runs
    outside pytest (its own venv, `make scan`)."""
    context = dict(context)
    artifact = None if context.pop("artifact", None) == "none" else fake_artifact
    folder = outdir / f"checkov-{request.node.callspec.id}"
    _, stack = build_stack(folder, artifact, **context, **{"aws:cdk:bundling-stacks": []})
    template = Template.from_stack(stack).to_json()
    assert checkov.template_problems(template) == []
    skipped = checkov_skips(template)
    assert ("AWS::Lambda::Function", "CKV_AWS_117") in skipped
    # Fixed, never skipped: every bucket is versioned (CKV_AWS_21), and only the access-log bucket logs nowhere.
    assert not any(check == "CKV_AWS_21" for _, check in skipped)
    unlogged = [i for i, entries in checkov.skips_of(template).items() for e in entries if e["id"] == "CKV_AWS_18"]
    assert unlogged == [ref_id(stack, stack.model_store.access_logs)]
    assert (("AWS::CloudFront::Distribution", "CKV_AWS_68") in skipped) == (context.get("waf") == "false")


def test_checkov_skips_follow_the_options(template, edge_stack):
    """Skips only where the finding exists: the TLS one only with the default certificate, the Log4j one only on
    a web ACL the stack creates."""
    default = checkov_skips(template.to_json())
    edge = checkov_skips(Template.from_stack(edge_stack).to_json())
    assert ("AWS::CloudFront::Distribution", "CKV_AWS_174") in default
    assert ("AWS::CloudFront::Distribution", "CKV_AWS_174") not in edge
    assert ("AWS::WAFv2::WebACL", "CKV_AWS_192") in default
    # with a given CloudFront web ACL, the one the stack creates is the stage's REGIONAL one, skipped for itself
    edge_acls = Template.from_stack(edge_stack).find_resources("AWS::WAFv2::WebACL").values()
    assert [acl["Properties"]["Scope"] for acl in edge_acls] == ["REGIONAL"]


def test_checkov_skip_check_is_live():
    """The template check reports a skip without a reason, an id that is not a checkov id, an id outside CHECKS, a
    check on the wrong resource type, a duplicate and a malformed entry (so an empty list above means something)."""
    reason = "A reason long enough to be one, saying why this finding does not apply here."
    template = {
        "Resources": {
            "NoReason": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27"}]}}},
            "EmptyReason": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": " "}]}},
            },
            "BadId": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_XX", "comment": reason}]}},
            },
            "Unknown": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_999", "comment": reason}]}},
            },
            "WrongType": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_117", "comment": reason}]}},
            },
            "Twice": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": reason}] * 2}},
            },
            "NotAList": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": "CKV_AWS_27"}}},
            "Fine": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": reason}]}},
            },
            "None": {"Type": "AWS::SQS::Queue", "Properties": {}},
        }
    }
    problems = checkov.template_problems(template)
    flagged = {problem.split(":")[0] for problem in problems}
    assert flagged == {"NoReason", "EmptyReason", "BadId", "Unknown", "WrongType", "Twice", "NotAList"}, problems


def test_checkov_skip_helper_refuses_what_the_template_check_would(tmp_path):
    """infra.checkov.skip fails at synth on an unknown id, a short reason, a wrong resource type or a second skip
    of one check, and merges a resource's skips into one list."""
    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Skips")
    bucket = s3.Bucket(stack, "Bucket")
    reason = "A reason long enough to be one, saying why this finding does not apply here."
    for check, comment in (("CKV_AWS_XX", reason), ("CKV_AWS_999", reason), ("CKV_AWS_18", "n/a")):
        with pytest.raises(ValueError):
            checkov.skip(bucket, check, comment)
    with pytest.raises(ValueError, match="runs on AWS::Lambda::Function"):
        checkov.skip(bucket, "CKV_AWS_117", reason)
    checkov.skip(bucket, "CKV_AWS_18", reason)
    with pytest.raises(ValueError, match="already skipped"):
        checkov.skip(bucket.node.default_child, "CKV_AWS_18", reason)
    function = cdk.CfnResource(stack, "Function", type="AWS::Lambda::Function")
    checkov.skip(function, "CKV_AWS_115", reason)
    checkov.skip(function, "CKV_AWS_117", reason)
    assert checkov.skips_of(Template.from_stack(stack).to_json()) == {
        ref_id(stack, bucket): [{"id": "CKV_AWS_18", "comment": reason}],
        stack.resolve(stack.get_logical_id(function)): [
            {"id": "CKV_AWS_115", "comment": reason},
            {"id": "CKV_AWS_117", "comment": reason},
        ],
    }
