"""The model bucket (versioned artifacts under ``<model_prefix><version>/``, large results under ``results/``).

The deploy uploads the artifact given by context and initialises the SSM parameter the worker reads to pick its
model version; ``python -m infra.publish_model`` later uploads other versions and moves the parameter, without a
code deploy. CloudFormation only rewrites the parameter when the deployed artifact's version changes, so a
redeploy of the same artifact keeps whatever ``publish_model`` switched to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from contract import MANIFEST, ArtifactError, is_artifact, verify
from contract.movie_index import FILENAME as MOVIE_INDEX
from infra import checkov
from infra.config import UNPUBLISHED, ConfigError

# Log buckets are versioned (a deleted or overwritten log stays recoverable); logs expire after LOG_DAYS, and a
# noncurrent version (an expired, deleted or overwritten log) NONCURRENT_DAYS later.
LOG_DAYS = 90
NONCURRENT_DAYS = 30


def log_lifecycle() -> s3.LifecycleRule:
    """The lifecycle rule of a versioned log bucket."""
    return s3.LifecycleRule(
        id="expire-logs",
        expiration=cdk.Duration.days(LOG_DAYS),
        noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS),
        abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
    )


def noncurrent_lifecycle() -> s3.LifecycleRule:
    """The lifecycle rule of a versioned bucket of current files: overwritten or deleted objects go after
    NONCURRENT_DAYS."""
    return s3.LifecycleRule(
        id="expire-noncurrent",
        noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS),
        expired_object_delete_marker=True,
        abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
    )


# The files of a published version the API function reads (search, model card); the model itself it never reads.
CATALOGUE_FILES = (MOVIE_INDEX, MANIFEST)


@dataclass(frozen=True)
class ModelStoreProps:
    """What the model store needs to know."""

    model_prefix: str
    results_prefix: str
    result_ttl_days: int
    artifact_dir: Path | None
    log_retention: logs.RetentionDays
    retain_data: bool


def artifact_version(artifact_dir: Path | None) -> str | None:
    """The verified ``model_version`` of the artifact to deploy; None for ``-c artifact=none``.

    A missing or broken artifact stops the synth: deploying without one is a choice (``-c artifact=none``), since it
    sets the served version to ``unpublished``.
    """
    if artifact_dir is None:
        return None
    if not is_artifact(artifact_dir):
        raise ConfigError(
            f"no model artifact at {artifact_dir}: run `make export` (or pass -c artifact=DIR); "
            "-c artifact=none deploys without a model (the worker then serves nothing until publish_model)"
        )
    try:
        return verify(artifact_dir)["model_version"]
    except ArtifactError as exc:
        raise ConfigError(f"the artifact to deploy is broken: {exc}") from exc


class ModelStore(Construct):
    """Versioned, private, SSL-only bucket for model artifacts and oversized results, plus the version parameter."""

    def __init__(self, scope: Construct, id: str, *, props: ModelStoreProps) -> None:
        super().__init__(scope, id)
        self.props = props
        removal = cdk.RemovalPolicy.RETAIN if props.retain_data else cdk.RemovalPolicy.DESTROY
        common = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "removal_policy": removal,
            # Emptied by a CDK custom resource on `cdk destroy`, else CloudFormation cannot delete the bucket.
            "auto_delete_objects": not props.retain_data,
        }
        self.access_logs = s3.Bucket(self, "AccessLogs", versioned=True, lifecycle_rules=[log_lifecycle()], **common)
        checkov.skip(
            self.access_logs,
            "CKV_AWS_18",
            "This bucket is the stack's server-access-log destination (the model, site and distribution-log buckets "
            "log here). Logging it too needs yet another, unlogged bucket, and S3 advises against a bucket logging "
            "to itself (every delivery would log one more). It is private, TLS-only, versioned and expires logs.",
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="model-bucket/",
            lifecycle_rules=[
                # Overwritten or deleted objects (a re-published version, a rollback clean-up) go after 30 days.
                noncurrent_lifecycle(),
                # Oversized results live as long as their request item (TTL), plus a day of slack; in a versioned
                # bucket an expired object becomes a noncurrent version, which goes a day later (not 30).
                s3.LifecycleRule(
                    id="expire-results",
                    prefix=props.results_prefix,
                    expiration=cdk.Duration.days(props.result_ttl_days + 1),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                ),
            ],
            **common,
        )

        self.model_version = artifact_version(props.artifact_dir)
        self.deployment: s3deploy.BucketDeployment | None = None
        if self.model_version is not None:
            upload_logs = logs.LogGroup(
                self, "ArtifactUploadLogs", retention=props.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
            )
            checkov.skip(upload_logs, "CKV_AWS_158", checkov.LOG_GROUP_KMS)
            self.deployment = s3deploy.BucketDeployment(
                self,
                "Artifact",
                sources=[s3deploy.Source.asset(str(props.artifact_dir))],
                destination_bucket=self.bucket,
                destination_key_prefix=self.model_key_prefix(self.model_version),
                # Never delete other versions under the prefix, nor old versions when this one changes:
                # rollbacks need them.
                prune=False,
                retain_on_delete=True,
                memory_limit=1024,
                log_group=upload_logs,
            )
        else:
            cdk.Annotations.of(self).add_warning_v2(
                "recommender:no-artifact",
                "-c artifact=none: the deploy uploads no model and the served version is 'unpublished' until "
                "`python -m infra.publish_model --artifact DIR`.",
            )

        self.version_parameter = ssm.StringParameter(
            self,
            "ModelVersion",
            description="The model version the worker serves (switch with python -m infra.publish_model)",
            string_value=self.model_version or UNPUBLISHED,
            tier=ssm.ParameterTier.STANDARD,
        )
        if self.deployment is not None:
            # Point the worker at the version only once its files are in the bucket.
            self.version_parameter.node.add_dependency(self.deployment)

    def model_key_prefix(self, version: str) -> str:
        return f"{self.props.model_prefix}{version}/"

    def grant_model_read(self, grantee: iam.IGrantable) -> None:
        """Read the model artifacts (``<model_prefix>*``) and the version parameter."""
        self.bucket.grant_read(grantee, f"{self.props.model_prefix}*")
        self.version_parameter.grant_read(grantee)

    def grant_catalogue_read(self, grantee: iam.IGrantable) -> None:
        """Get every version's movie index and manifest (``<model_prefix>*/movies.json.gz``, ``.../manifest.json``)
        and read the version parameter; nothing else of the model."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{self.props.model_prefix}*/{n}") for n in CATALOGUE_FILES],
        )
        self.version_parameter.grant_read(grantee)

    def grant_results_write(self, grantee: iam.IGrantable) -> None:
        """Write oversized results (``<results_prefix>*`` only)."""
        self.bucket.grant_put(grantee, f"{self.props.results_prefix}*")

    def grant_results_delete(self, grantee: iam.IGrantable) -> None:
        """Delete results (``<results_prefix>*`` only): a forgotten user's, and a result whose request is gone."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:DeleteObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{self.props.results_prefix}*")],
        )

    def grant_results_read(self, grantee: iam.IGrantable) -> None:
        """Read oversized results (``<results_prefix>*`` only)."""
        self.bucket.grant_read(grantee, f"{self.props.results_prefix}*")
