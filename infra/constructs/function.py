"""A Python Lambda function with its own role (no managed policies), its own log group and X-Ray tracing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov
from infra.nag import acknowledge

# The runtime model_export/package.py builds wheels for (cp312); change both together.
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


@dataclass(frozen=True)
class FunctionProps:
    """One function's code and sizing."""

    code: lambda_.Code
    handler: str
    memory_mb: int
    timeout_s: int
    architecture: str
    environment: Mapping[str, str]
    log_retention: logs.RetentionDays
    description: str
    ephemeral_storage_mb: int = 512  # /tmp: Lambda's default; the retraining steps stream data through more


class PythonFunction(Construct):
    """``function``, ``role`` and ``log_group``; every permission beyond logs and X-Ray comes from ``grant_*``."""

    def __init__(self, scope: Construct, id: str, *, props: FunctionProps) -> None:
        super().__init__(scope, id)
        # Our own role instead of AWSLambdaBasicExecutionRole: that managed policy may write to any log group.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.log_group = logs.LogGroup(
            self, "Logs", retention=props.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURES[props.architecture],
            code=props.code,
            handler=props.handler,
            memory_size=props.memory_mb,
            timeout=cdk.Duration.seconds(props.timeout_s),
            environment=dict(props.environment),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            description=props.description,
            ephemeral_storage_size=(
                cdk.Size.mebibytes(props.ephemeral_storage_mb) if props.ephemeral_storage_mb != 512 else None
            ),
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
            findings=["Resource::*"],
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the package is built from cp312 wheels (model_export/package.py) and tested "
            "on that version; the runtime and the wheels move together.",
        )
        # Reserved concurrency (CKV_AWS_115) differs by function: the owner of each one decides.
        checkov.skip(self.log_group, "CKV_AWS_158", checkov.LOG_GROUP_KMS)
        checkov.skip(self.function, "CKV_AWS_116", checkov.FUNCTION_DLQ)
        checkov.skip(self.function, "CKV_AWS_117", checkov.FUNCTION_VPC)
        checkov.skip(self.function, "CKV_AWS_173", checkov.FUNCTION_ENV_KMS)
