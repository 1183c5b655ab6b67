"""What each role of the stack may do, read from the synthesized CloudFormation template (``docs/iam.md``).

``python -m infra.iam_report --page docs/iam.md`` synthesizes the stack in-process (cdk.json's context and a
placeholder artifact: the roles do not depend on the model) and writes the page; ``--template PATH`` renders a
template that ``make synth`` wrote instead. ``tests/infra/stack/test_iam.py`` renders the page from the tests'
template and fails when the committed one differs.

Everything in the tables comes from the template: which function uses which role, what may invoke it (its
``AWS::Lambda::Permission`` resources, its SQS event source mappings, the custom resources whose service token it
is), every statement of the role's policies and of the resource policies that name it, and what each resource is
(named by the stack output that points at it, or by what uses it). Written here, because the template cannot say
it: why a grant exists (``WHY``), what a role is for and the option that removes it (``ROLES``), and the actions of
the AWS managed policies (``MANAGED``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.artifact import FORMAT, MANIFEST, REQUIRED_FILES, content_version, file_entry
from infra.config import (
    OUTPUT_BUCKET,
    OUTPUT_DATA_BUCKET,
    OUTPUT_DLQ,
    OUTPUT_EVENTS_TABLE,
    OUTPUT_MODEL_PARAMETER,
    OUTPUT_QUEUE,
    OUTPUT_RETRAIN,
    OUTPUT_TABLE,
)

PAGE_PATH = "docs/iam.md"
PAGE_COMMAND = f"python -m infra.iam_report --page {PAGE_PATH}"
WIDTH = 120

# What the stack's outputs point at, in the page's words.
OUTPUT_NAMES = {
    OUTPUT_TABLE: "the results table",
    OUTPUT_EVENTS_TABLE: "the events table",
    OUTPUT_BUCKET: "the model bucket",
    OUTPUT_QUEUE: "the request queue",
    OUTPUT_DLQ: "the dead-letter queue",
    OUTPUT_MODEL_PARAMETER: "the model-version parameter",
    OUTPUT_DATA_BUCKET: "the data bucket",
    OUTPUT_RETRAIN: "the retraining state machine",
}
ALERTS = "the retraining alerts topic"
FUNCTION_NAMES = {
    "lambdas.retrain.handler.start_handler": "the gather step's function",
    "lambdas.retrain.handler.finish_handler": "the judge step's function",
}  # the SNS topic the retraining state machine and its alarm notify
SITE_BUCKET = "the site bucket"  # a bucket the distribution serves from
DISTRIBUTION_LOGS = "the distribution's log bucket"
ACCESS_LOGS = "the access-log bucket"  # where the other buckets' access logs go
CDK_ASSETS = "CDK's asset bucket"


@dataclass(frozen=True)
class RoleDoc:
    """What the template cannot say about a role: its title on the page, and what it is for."""

    title: str
    note: str = ""


# Roles by their key (their function's handler, the custom resource type it serves, or the resource type that uses
# the role), in the page's order.
API = "lambdas.api.handler.lambda_handler"
WORKER = "lambdas.worker.handler.lambda_handler"
DLQ = "lambdas.worker.handler.dlq_handler"
DEPLOYMENT = "Custom::CDKBucketDeployment"
AUTO_DELETE = "Custom::S3AutoDeleteObjects"
APIGW_ACCOUNT = "AWS::ApiGateway::Account"
RETRAIN_START = "lambdas.retrain.handler.start_handler"
RETRAIN_FINISH = "lambdas.retrain.handler.finish_handler"
STATE_MACHINE = "AWS::StepFunctions::StateMachine"
SCHEDULE = "AWS::Scheduler::Schedule"
TRAINING_JOB = "sagemaker.amazonaws.com"
ROLES: dict[str, RoleDoc] = {
    API: RoleDoc("API function", "It answers every API call."),
    WORKER: RoleDoc("Worker function", "It computes the queued recommendation requests."),
    DLQ: RoleDoc(
        "Dead-letter consumer",
        "It marks FAILED the requests whose messages were dead-lettered. Absent with `-c dead_letter_consumer=false`.",
    ),
    DEPLOYMENT: RoleDoc(
        "CDK `BucketDeployment` handler",
        "aws-cdk-lib's code, not ours: it runs only during a deploy, to upload the artifact and `web/`.",
    ),
    AUTO_DELETE: RoleDoc(
        "CDK `S3AutoDeleteObjects` handler",
        "aws-cdk-lib's code, not ours: it empties the buckets when the stack is destroyed (`make destroy`). Absent"
        " with `-c retain_data=true`.",
    ),
    APIGW_ACCOUNT: RoleDoc(
        "API Gateway's CloudWatch Logs role",
        "Not a function's: the account-level role API Gateway writes the stage's access logs with."
        " `-c api_cloudwatch_role=false` leaves the account's existing one.",
    ),
    RETRAIN_START: RoleDoc(
        "Retraining: the gather step",
        "It gathers a run's training data (docs/retraining.md). Absent with `-c retrain=false`, as are the next four.",
    ),
    RETRAIN_FINISH: RoleDoc("Retraining: the judge step", "It puts the trained candidate through the gate."),
    TRAINING_JOB: RoleDoc(
        "Retraining: the SageMaker training job",
        "The role the training job runs as (the state machine passes it to SageMaker).",
    ),
    STATE_MACHINE: RoleDoc("Retraining: the state machine", "It runs the steps and waits on the training job."),
    SCHEDULE: RoleDoc("Retraining: the schedule", "EventBridge Scheduler starts a run with it."),
}

# Why a grant exists: (role key, an action of the statement, a resource it names) -> the reason. A test fails when
# one matches no statement of the template any more.
WHY: dict[tuple[str, str, str], str] = {
    (API, "sqs:SendMessage", "the request queue"): "submit a request",
    (API, "dynamodb:PutItem", "the results table"): (
        "a request's item: submit, status, a failed send, a released Idempotency-Key, forgetting (no Scan or Query)"
    ),
    (API, "dynamodb:PutItem", "the events table"): (
        "`POST /events`, the requests' user pointers, `DELETE /users/{id}`, a person's account (`/me`)"
    ),
    (API, "s3:DeleteObject", "the model bucket"): "a forgotten user's results",
    (API, "s3:GetObject*", "the model bucket"): "results too large for the table",
    (API, "s3:GetObject", "the model bucket"): (
        "each version's movie index and manifest (`GET /movies`, `GET /model`), no other model file"
    ),
    (API, "ssm:GetParameter", "the model-version parameter"): "the served version",
    (WORKER, "sqs:ReceiveMessage", "the request queue"): "its event source",
    (WORKER, "dynamodb:UpdateItem", "the results table"): "read the request, write its result",
    (WORKER, "dynamodb:Query", "the events table"): "the user's newest events",
    (WORKER, "s3:PutObject", "the model bucket"): (
        "results too large for the table; `DeleteObject`: such a result whose request was deleted while it ran"
    ),
    (WORKER, "s3:GetObject*", "the model bucket"): "the served artifact",
    (WORKER, "ssm:GetParameter", "the model-version parameter"): "the served version",
    (DLQ, "sqs:ReceiveMessage", "the dead-letter queue"): "its event source",
    (DLQ, "dynamodb:UpdateItem", "the results table"): "mark the request FAILED",
    (DEPLOYMENT, "s3:GetObject*", CDK_ASSETS): "the files to upload, zipped by CDK",
    (DEPLOYMENT, "s3:PutObject", "the model bucket"): (
        "copy them into place (`web/`'s old files removed; the artifact goes under its own version's prefix)"
    ),
    (DEPLOYMENT, "cloudfront:CreateInvalidation", "*"): "CDK's statement: invalidate the page's cache after the upload",
    (AUTO_DELETE, "s3:DeleteObject*", "the model bucket"): "empty each bucket before CloudFormation deletes it",
    (RETRAIN_START, "dynamodb:Scan", "the events table"): (
        "read every stored event and forgotten user; `DeleteItem`: a tombstone once applied"
    ),
    (RETRAIN_START, "s3:PutObject", "the data bucket"): (
        "the base data's versions (a forgotten user rewritten out, the replaced version deleted) and the run's files"
    ),
    (RETRAIN_START, "s3:GetObject", "the model bucket"): "the served model's manifest (its `events_through`)",
    (RETRAIN_START, "ssm:GetParameter", "the model-version parameter"): "the served version",
    (RETRAIN_START, "states:ListExecutions", "the retraining state machine"): "no two runs at once",
    (RETRAIN_FINISH, "s3:GetObject*", "the data bucket"): "the job's `model.tar.gz`",
    (RETRAIN_FINISH, "s3:PutObject", "the model bucket"): "the candidate's files, its manifest with the gate's record",
    (RETRAIN_FINISH, "ssm:PutParameter", "the model-version parameter"): "serve the candidate (only past the gate)",
    (TRAINING_JOB, "s3:GetObject*", "the data bucket"): (
        "the job's channels: base data, the run's events, the served model; its source tarball (CDK's asset)"
    ),
    (TRAINING_JOB, "s3:PutObject", "the data bucket"): "its `model.tar.gz` under the run's `output/`",
    (TRAINING_JOB, "ecr:BatchGetImage", "`arn:<partition>:ecr:<region>:763104351884:repository/tensorflow-training`"): (
        "pull the prebuilt SageMaker TensorFlow training image (AWS's account; `-c retrain_image`)"
    ),
    (TRAINING_JOB, "ecr:GetAuthorizationToken", "*"): "ECR's login: no resource-level permissions",
    (STATE_MACHINE, "sagemaker:CreateTrainingJob", "`arn:<partition>:sagemaker:<region>:<account>:training-job/*`"): (
        "start the run's job and wait for it (RUN_JOB)"
    ),
    (STATE_MACHINE, "iam:PassRole", "the training job's role"): "hand the job its role",
    (STATE_MACHINE, "sns:Publish", ALERTS): "a failed step's notice",
    (STATE_MACHINE, "logs:CreateLogDelivery", "*"): "Step Functions' execution logs and X-Ray: no resource level",
    (SCHEDULE, "states:StartExecution", "the retraining state machine"): "start a run on the schedule",
}
# The AWS managed policies a role may carry: their actions (each on "*"), as AWS publishes them.
MANAGED: dict[str, tuple[str, ...]] = {
    "AWSLambdaBasicExecutionRole": ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
    "AmazonAPIGatewayPushToCloudWatchLogs": (
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
    ),
}
# Why a statement of ours names "*".
STAR_WHY = {"xray": "X-Ray has no resource-level permissions"}
RESOURCE_POLICIES = ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy")


# ---------------------------------------------------------------------------------------------- the template


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref(value: Any) -> str | None:
    """The logical id that ``{"Ref": X}`` or ``{"Fn::GetAtt": [X, ...]}`` names."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    return None


@dataclass(frozen=True)
class Target:
    """A resource an IAM statement names: its name on the page, its kind (``bucket``, ``table``, ``*``, ``other``),
    and the path after it (``models/*``, ``index/by_received_at``; empty for the resource itself)."""

    name: str
    kind: str
    path: str = ""
    indexed: bool = False  # a table with secondary indexes
    detail: str = ""  # shown after the name, e.g. the asset bucket's name pattern


class Template:
    """A synthesized template, and the names the page gives its resources."""

    def __init__(self, template: dict) -> None:
        # by logical id: the page must not depend on the order a synthesizer writes the keys in
        self.resources: dict[str, dict] = dict(sorted(template.get("Resources", {}).items()))
        self.outputs: dict[str, dict] = dict(sorted(template.get("Outputs", {}).items()))
        self.names: dict[str, str] = {}
        for key, output in self.outputs.items():
            target = _ref(output.get("Value"))
            if key in OUTPUT_NAMES and target in self.resources:
                self.names[target] = OUTPUT_NAMES[key]
        for distribution in self.of_type("AWS::CloudFront::Distribution").values():
            config = distribution["Properties"]["DistributionConfig"]
            for origin in config.get("Origins", []):
                bucket = _ref(origin.get("DomainName"))
                if self.type_of(bucket) == "AWS::S3::Bucket":
                    self.names.setdefault(bucket, SITE_BUCKET)
            logs = _ref(config.get("Logging", {}).get("Bucket"))
            if logs:
                self.names.setdefault(logs, DISTRIBUTION_LOGS)
        for bucket in self.of_type("AWS::S3::Bucket").values():
            logs = _ref(bucket["Properties"].get("LoggingConfiguration", {}).get("DestinationBucketName"))
            if logs:
                self.names.setdefault(logs, ACCESS_LOGS)
        for lid, fn in self.of_type("AWS::Lambda::Function").items():
            handler = fn["Properties"].get("Handler", "")
            if handler in FUNCTION_NAMES:
                self.names.setdefault(lid, FUNCTION_NAMES[handler])
        for lid, role in self.of_type("AWS::IAM::Role").items():
            statements = _as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
            if any(TRAINING_JOB in _as_list(st.get("Principal", {}).get("Service", [])) for st in statements):
                self.names.setdefault(lid, "the training job's role")
        for lid, topic in self.of_type("AWS::SNS::Topic").items():
            if "retraining" in topic["Properties"].get("DisplayName", "").lower():
                self.names.setdefault(lid, ALERTS)

    def of_type(self, kind: str) -> dict[str, dict]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == kind}

    def type_of(self, logical_id: str | None) -> str | None:
        return self.resources.get(logical_id or "", {}).get("Type")

    def functions(self) -> dict[str, dict]:
        return self.of_type("AWS::Lambda::Function")

    def role_of(self, function_id: str) -> str | None:
        return _ref(self.resources[function_id]["Properties"].get("Role"))

    def name(self, logical_id: str, role_id: str = "") -> str:
        """The page's name for a resource (a log group that only the role's functions write: "its own log group")."""
        if logical_id in self.names:
            return self.names[logical_id]
        kind = self.type_of(logical_id) or "resource"
        if kind == "AWS::Logs::LogGroup":
            writers = [
                f
                for f, r in self.functions().items()
                if _ref(r["Properties"].get("LoggingConfig", {}).get("LogGroup")) == logical_id
            ]
            if writers and all(self.role_of(f) == role_id for f in writers):
                return "its own log group"
        return f"`{logical_id}` ({kind})"

    def target(self, resource: Any, role_id: str) -> Target:
        """What one entry of a statement's ``Resource`` names."""
        if resource == "*":
            return Target("*", "*")
        logical_id, path = _ref(resource), ""
        if logical_id is None and isinstance(resource, dict) and "Fn::Join" in resource:
            parts = resource["Fn::Join"][1]
            for i, part in enumerate(parts):
                tail = "".join(p for p in parts[i + 1 :] if isinstance(p, str)).removeprefix("/")
                if _ref(part) in self.resources:
                    logical_id, path = _ref(part), tail
                    break
                sub = part.get("Fn::Sub", "") if isinstance(part, dict) else ""
                if isinstance(sub, str) and sub.startswith("cdk-") and "-assets-" in sub:
                    pattern = sub.replace("${AWS::AccountId}", "<account>").replace("${AWS::Region}", "<region>")
                    return Target(CDK_ASSETS, "bucket", tail, detail=f"`{pattern}`")
        if logical_id is None and isinstance(resource, dict) and "Fn::Join" in resource:
            return Target(f"`{_arn(resource)}`", "other")
        if logical_id not in self.resources:
            return Target(f"`{json.dumps(resource, sort_keys=True)}`", "other")
        kind = {"AWS::S3::Bucket": "bucket", "AWS::DynamoDB::Table": "table"}.get(
            self.type_of(logical_id) or "", "other"
        )
        properties = self.resources[logical_id]["Properties"]
        indexed = bool(properties.get("LocalSecondaryIndexes") or properties.get("GlobalSecondaryIndexes"))
        return Target(self.name(logical_id, role_id), kind, path, indexed)


PSEUDO = {"AWS::Partition": "<partition>", "AWS::Region": "<region>", "AWS::AccountId": "<account>"}


def _arn(join: dict) -> str:
    """An ARN the template builds from pseudo parameters, readably (``arn:<partition>:logs:<region>:...``)."""
    sep, parts = join["Fn::Join"]
    return sep.join(p if isinstance(p, str) else PSEUDO.get(p.get("Ref", ""), "<?>") for p in parts)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _buckets(names: list[str], paths: list[str], whole: bool) -> str:
    """``the model bucket and `models/*```, ```results/*` in the model bucket``, ``the model bucket and the site
    bucket, and every object in them``."""
    who = _names(names)
    if not paths:
        return who
    if paths == ["*"]:
        if not whole:
            return f"every object in {who}"
        return f"{who}, and every object in them" if len(names) > 1 else f"{who} and every object in it"
    listed = ", ".join(f"`{p}`" for p in paths)
    return f"{who} and {listed}" if whole else f"{listed} in {who}"


def describe(targets: Sequence[Target]) -> str:
    """A statement's resources, readably: a bucket's or table's entries together, buckets with the same paths
    together."""
    order: list[Target] = []  # the first entry of each resource
    paths: dict[str, list[str]] = {}
    for target in targets:
        if target.name not in paths:
            order.append(target)
            paths[target.name] = []
        paths[target.name].append(target.path)
    phrases: list[str] = []
    buckets: dict[tuple[str, ...], list[str]] = {}
    for target in order:
        shape = paths[target.name]
        rest = [p for p in shape if p]
        if target.kind == "bucket":
            if tuple(shape) not in buckets:
                phrases.append(f"buckets:{len(buckets)}")
            buckets.setdefault(tuple(shape), []).append(target.name + (f" ({target.detail})" if target.detail else ""))
        elif target.kind == "table" and rest and "" not in shape:
            indexes = ", ".join(f"`{p.removeprefix('index/')}`" for p in rest)
            phrases.append(f"{target.name}'s {indexes} index only")
        elif target.kind == "table":
            phrases.append(target.name + (" (not its index)" if target.indexed and not rest else ""))
        elif target.kind == "*":
            phrases.append("`*`")
        else:
            phrases.append(target.name + "".join(f" `{p}`" for p in rest))
    groups = list(buckets.items())
    for i, phrase in enumerate(phrases):
        if phrase.startswith("buckets:"):
            shape, names = groups[int(phrase.removeprefix("buckets:"))]
            phrases[i] = _buckets(names, [p for p in shape if p], "" in shape)
    return "; ".join(phrases)


# ---------------------------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class Grant:
    """One row of a role's table: an effect, actions, the resources (readable, and their names for ``WHY``), and the
    policy it comes from."""

    actions: tuple[str, ...]
    on: str
    names: tuple[str, ...]
    via: str = ""  # "" (the role's own policies), "managed:<name>", or "resource policies"
    effect: str = "Allow"
    condition: str = ""


@dataclass(frozen=True)
class Role:
    """A role of the template: its key (for ``ROLES`` and ``WHY``), who uses it, when that runs, its grants."""

    logical_id: str
    key: str
    user: str
    runs: str
    grants: tuple[Grant, ...]


def _condition(condition: dict) -> str:
    """A statement's condition, readably: ``cloudwatch:namespace` StringLike `/aws/sagemaker/TrainingJobs```."""
    return "; ".join(
        f"`{key}` {operator} " + ", ".join(f"`{v}`" for v in _as_list(value))
        for operator, tests in sorted(condition.items())
        for key, value in sorted(tests.items())
    )


def _grant(t: Template, actions: Any, resources: Any, role_id: str, **how: str) -> Grant:
    targets = [t.target(r, role_id) for r in _as_list(resources)]
    names = tuple(dict.fromkeys(x.name for x in targets))
    return Grant(tuple(_as_list(actions)), describe(targets), names, **how)


def grants_of(t: Template, role_id: str) -> list[Grant]:
    """Every grant to a role: its managed policies, inline policies, attached ``AWS::IAM::Policy`` documents, and the
    resource policies that name it as principal (the same actions on several resources: one row)."""
    properties = t.resources[role_id]["Properties"]
    out = []
    for arn in properties.get("ManagedPolicyArns", []):
        name = json.dumps(arn).split(":iam::aws:policy/")[-1].split('"')[0].split("/")[-1]
        out.append(Grant(MANAGED.get(name, ()), "`*`" if name in MANAGED else "", ("*",), f"managed:{name}"))
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    documents += [
        p["Properties"]["PolicyDocument"]
        for p in t.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    for document in documents:
        for s in _as_list(document.get("Statement", [])):
            condition = _condition(s["Condition"]) if s.get("Condition") else ""
            out.append(_grant(t, s["Action"], s["Resource"], role_id, effect=s["Effect"], condition=condition))
    granted: dict[tuple[tuple[str, ...], str], list[Any]] = {}
    for kind in RESOURCE_POLICIES:
        for policy in t.of_type(kind).values():
            for s in _as_list(policy["Properties"]["PolicyDocument"].get("Statement", [])):
                principal = s.get("Principal")
                if isinstance(principal, dict) and _ref(principal.get("AWS")) == role_id:
                    granted.setdefault((tuple(_as_list(s["Action"])), s["Effect"]), []).extend(_as_list(s["Resource"]))
    for (actions, effect), resources in granted.items():
        out.append(_grant(t, list(actions), resources, role_id, via="resource policies", effect=effect))
    return out


def _invokers(t: Template, function_id: str) -> list[str]:
    """Who may invoke a function, from its ``AWS::Lambda::Permission`` resources."""
    methods: list[tuple[str, str]] = []
    others: list[str] = []
    for permission in t.of_type("AWS::Lambda::Permission").values():
        p = permission["Properties"]
        if _ref(p.get("FunctionName")) != function_id:
            continue
        source = p.get("SourceArn", {})
        tail = source["Fn::Join"][1][-1] if isinstance(source, dict) and "Fn::Join" in source else ""
        if p.get("Principal") == "apigateway.amazonaws.com" and isinstance(tail, str) and tail.count("/") >= 2:
            method, _, path = tail.removeprefix("/").partition("/")
            methods.append((path, method))
        else:
            others.append(f"`{p.get('Principal')}` (`{p.get('Action')}`)")
    out = []
    if methods:
        out.append(
            "per API request: API Gateway (`apigateway.amazonaws.com`) may invoke it for this API's stage only, for"
            f" {len(methods)} methods ({', '.join(f'`{m} /{p}`' for p, m in sorted(methods))};"
            " `AWS::Lambda::Permission` with the stage's source ARN)"
        )
    if others:
        out.append("when invoked by " + ", ".join(others))
    return out


def _runs(t: Template, function_id: str) -> str:
    """When a function runs, from what the template wires to it."""
    whens = _invokers(t, function_id)
    for mapping in t.of_type("AWS::Lambda::EventSourceMapping").values():
        p = mapping["Properties"]
        if _ref(p.get("FunctionName")) == function_id:
            cap = p.get("ScalingConfig", {}).get("MaximumConcurrency")
            source = t.name(_ref(p["EventSourceArn"]) or "")
            whens.append(
                f"per batch of up to {p.get('BatchSize', 10)} messages from {source}"
                + (f", at most {cap} at once" if cap else "")
                + " (its SQS event source mapping)"
            )
    served: dict[str, list[str]] = {}
    for lid, resource in t.resources.items():
        if resource["Type"].startswith("Custom::") and _ref(resource["Properties"].get("ServiceToken")) == function_id:
            p = resource["Properties"]
            bucket = _ref(p.get("DestinationBucketName") or p.get("BucketName"))
            served.setdefault(resource["Type"], []).append(t.name(bucket) if bucket else f"`{lid}`")
    for machine_id, machine in t.of_type(STATE_MACHINE).items():
        if function_id in json.dumps(machine["Properties"].get("DefinitionString", "")):
            whens.append(f"as a step of {t.name(machine_id)} (`lambda:InvokeFunction` by its role)")
    for kind, on in served.items():
        whens.append(
            f"when CloudFormation creates, updates or deletes one of its {len(on)} `{kind}` resources (on {_names(on)})"
        )
    return "; ".join(whens) if whens else "nothing in the template invokes it"


def roles(t: Template) -> list[Role]:
    """Every role of the template: those of ``ROLES`` in its order, then any other by logical id."""
    found = []
    for role_id, resource in t.of_type("AWS::IAM::Role").items():
        functions = [f for f in t.functions() if t.role_of(f) == role_id]
        if functions:
            handler = t.resources[functions[0]]["Properties"].get("Handler", "")
            custom = sorted(
                {
                    r["Type"]
                    for r in t.resources.values()
                    if r["Type"].startswith("Custom::") and _ref(r["Properties"].get("ServiceToken")) in functions
                }
            )
            key = custom[0] if custom and not handler.startswith("lambdas.") else handler
            user = f"the function `{handler}`"
            if len(functions) > 1:
                user = "functions " + ", ".join(f"`{f}`" for f in functions)
            runs = "it runs " + "; ".join(_runs(t, f) for f in functions)
        else:
            users = sorted(
                r["Type"]
                for lid, r in t.resources.items()
                if lid != role_id and r["Type"] != "AWS::IAM::Policy" and role_id in json.dumps(r.get("Properties"))
            )
            principal = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"][0].get("Principal", {})
            services = _as_list(principal.get("Service", []))
            key = TRAINING_JOB if TRAINING_JOB in services else users[0] if users else role_id
            user = "the service " + ", ".join(f"`{s}`" for s in _as_list(principal.get("Service", [])))
            runs = f"the {_names([f'`{u}`' for u in users])} resource names it" if users else "no resource names it"
        found.append(Role(role_id, key, user, runs, tuple(grants_of(t, role_id))))
    order = list(ROLES)
    return sorted(found, key=lambda r: (order.index(r.key) if r.key in order else len(order), r.logical_id))


# ---------------------------------------------------------------------------------------------- the page


def _actions(actions: Sequence[str]) -> str:
    """```dynamodb:GetItem`, `UpdateItem```: each service named once."""
    out, service = [], None
    for action in actions:
        prefix, _, name = action.partition(":")
        out.append(f"`{action}`" if prefix != service else f"`{name}`")
        service = prefix
    return ", ".join(out)


def _why(role: Role, grant: Grant) -> str:
    reasons = list(dict.fromkeys(WHY[k] for a in grant.actions for n in grant.names if (k := (role.key, a, n)) in WHY))
    if grant.names == ("*",) and not grant.via:
        reasons += [STAR_WHY[s] for s in sorted({a.partition(":")[0] for a in grant.actions}) if s in STAR_WHY]
    if grant.via == "resource policies":
        reasons.append("granted by each resource's own policy, not by the role")
    if grant.condition:
        reasons.append(f"only when {grant.condition}")
    return "; ".join(reasons)


def _row(role: Role, grant: Grant) -> str:
    actions = _actions(grant.actions)
    if grant.via.startswith("managed:"):
        name = grant.via.removeprefix("managed:")
        actions = f"AWS managed policy `{name}`" + (f": {actions}" if grant.actions else " (its actions: see AWS)")
    if grant.effect != "Allow":
        actions = f"**{grant.effect}** {actions}"
    return f"| {actions} | {grant.on} | {_why(role, grant)} |"


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def intro(t: Template, found: Sequence[Role]) -> str:
    """How to read the page; its claims are checked against the template."""
    functions = [r for r in found if r.user.startswith(("the function", "functions"))]
    shared = any(r.user.startswith("functions") for r in functions)
    managed = [
        f"the {ROLES[r.key].title}" if r.key in ROLES else f"role `{r.logical_id}`"
        for r in functions
        if any(g.via.startswith("managed:") for g in r.grants)
    ]
    own = "Some functions share a role" if shared else "Every function has its own role"
    exceptions = f" except on the roles of {_names(managed)}" if managed else ""
    outputs = ", ".join(f"`{key}`: {name}" for key, name in OUTPUT_NAMES.items() if key in t.outputs)
    return (
        "Every role the stack creates, with every statement of its policies, read from the synthesized CloudFormation"
        " template (the stack with cdk.json's context; `make synth` writes it to"
        f" `cdk.out/MovieRecommender.template.json`). {own}, with no managed policy{exceptions};"
        " `tests/infra/stack/test_iam.py` also asserts the exact actions of the first three. A resource is named by"
        f" the stack output that points at it ({outputs}) or by what uses it ({SITE_BUCKET} is the distribution's"
        f" origin, {ACCESS_LOGS} receives the other buckets' access logs). A function may be invoked only as its"
        " section says: the template holds no other `AWS::Lambda::Permission`, and CloudFormation invokes the CDK"
        " handlers for their custom resources."
    )


def page(template: dict) -> str:
    """The whole page, as markdown."""
    t = Template(template)
    found = roles(t)
    blocks = [
        "# IAM: what each role may do",
        _wrap(
            f"*Generated by `{PAGE_COMMAND}` from the synthesized template: edit the stack or `infra/iam_report.py`,"
            " not this file. `tests/infra/stack/test_iam.py` fails when this page is stale.*"
        ),
        _wrap(intro(t, found)),
    ]
    for role in found:
        doc = ROLES.get(role.key, RoleDoc(f"Role `{role.logical_id}`"))
        blocks.append(f"## {doc.title}")
        blocks.append(_wrap(f"Role `{role.logical_id}`, for {role.user}; {role.runs}. {doc.note}".strip()))
        blocks.append("\n".join(["| Actions | On | Why |", "|---|---|---|", *(_row(role, g) for g in role.grants)]))
    return "\n\n".join(blocks) + "\n"


def unmatched_reasons(template: dict) -> list[tuple[str, str, str]]:
    """The ``WHY`` entries that match no statement of the template (stale reasons)."""
    found = roles(Template(template))
    used = {(r.key, a, n) for r in found for g in r.grants for a in g.actions for n in g.names}
    return [key for key in WHY if key not in used]


# ---------------------------------------------------------------------------------------------- synthesis


def placeholder_artifact(directory: Path) -> Path:
    """An artifact that passes the synth's checks (placeholder bytes): the roles do not depend on the model."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES:
        (directory / name).write_bytes(f"placeholder {name}\n".encode())
    files = {name: file_entry(directory / name) for name in REQUIRED_FILES}
    manifest = {"format": FORMAT, "model_version": content_version(files), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return directory


def synthesize() -> dict:
    """The stack's template as ``make synth`` builds it from cdk.json's context, with a placeholder artifact."""
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from infra.config import StackConfig, cdk_json_context
    from infra.stack import RecommenderStack

    with tempfile.TemporaryDirectory() as tmp:
        artifact = placeholder_artifact(Path(tmp) / "artifact")
        app = cdk.App(context=cdk_json_context() | {"artifact": str(artifact)}, outdir=str(Path(tmp) / "cdk.out"))
        config = StackConfig.from_context(app.node.try_get_context)
        stack = RecommenderStack(app, config.stack_name, config=config)
        return app.synth().get_stack_by_name(stack.stack_name).template


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], prog="python -m infra.iam_report")
    parser.add_argument("--template", type=Path, help="a synthesized template (default: synthesize the stack here)")
    parser.add_argument("--page", type=Path, metavar="PATH", help="write the page to PATH instead of printing it")
    args = parser.parse_args(argv)
    text = page(json.loads(args.template.read_text()) if args.template else synthesize())
    if args.page is None:
        print(text, end="")
        return
    args.page.write_text(text)
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()
