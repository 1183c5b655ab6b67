"""The stack's typed configuration, read from CDK context (``cdk.json`` defaults, ``-c key=value`` overrides).

Pure Python on purpose: ``infra.publish_model`` and the tests read the output names from here without starting the
CDK (jsii) runtime.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lambdas import settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STACK_NAME = "MovieRecommender"

# CloudFormation output keys: publish_model and the docs' commands read the deployed stack through these.
OUTPUT_API_URL = "ApiUrl"
OUTPUT_API_KEY_ID = "ApiKeyId"
OUTPUT_TABLE = "TableName"
OUTPUT_EVENTS_TABLE = "EventsTableName"
OUTPUT_QUEUE = "QueueUrl"
OUTPUT_DLQ = "DeadLetterQueueUrl"
OUTPUT_BUCKET = "ModelBucketName"
OUTPUT_MODEL_PARAMETER = "ModelVersionParameterName"
OUTPUT_DASHBOARD = "DashboardName"
OUTPUT_SITE_URL = "SiteUrl"
OUTPUT_WEB_ACL = "WebAclArn"
OUTPUT_DATA_BUCKET = "DataBucketName"
OUTPUT_RETRAIN = "RetrainStateMachineArn"
OUTPUT_USER_POOL = "UserPoolId"
# People's passwords: the deployed user pool and the local one (infra/local/auth.py) enforce the same rule. Length
# over composition rules, as NIST SP 800-63B advises (Cognito checks every rule at sign-up and password change).
PASSWORD_MIN_LENGTH = 8
OUTPUT_USER_POOL_CLIENT = "UserPoolClientId"

# The model-version parameter's value until a model is published (the settings module's, read by the API too).
UNPUBLISHED = settings.UNPUBLISHED

# What a CLOUDFRONT-scope WAFv2 web ACL's ARN looks like (such web ACLs exist only in us-east-1).
CLOUDFRONT_WEB_ACL = re.compile(r"arn:aws[\w-]*:wafv2:us-east-1:\d{12}:global/webacl/.+")

# Lambda's fixed log-retention choices (CloudWatch Logs accepts only these).
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192)
RETENTION_DAYS += (2557, 2922, 3288, 3653)


class ConfigError(ValueError):
    """A context value is missing, malformed or out of range."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def _origins(value: Any) -> tuple[str, ...]:
    # `-c cors_origins=https://a.example,https://b.example` arrives as a string; cdk.json may hold a list.
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(o.strip() for o in str(value).split(",") if o.strip())


def _optional_str(value: Any) -> str | None:
    return None if value in (None, "", "none", "None") else str(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "bool": _bool,
    "str": str,
    "str | None": _optional_str,
    "tuple[str, ...]": _origins,
}


@dataclass(frozen=True)
class StackConfig:
    """Every tunable of the stack; the field name is the context key (``-c worker_memory_mb=2048``)."""

    stack_name: str = DEFAULT_STACK_NAME
    # x86_64: the engine's latency, cold start and parity figures were measured on x86_64 with the same
    # onnxruntime wheel that ships; arm64 is ~20% cheaper per GB-second and works too (package.py builds both).
    architecture: str = "x86_64"
    # Worker sizing from the benchmark: ~1 ms per request, ~0.6 s cold start (artifact load), ~150 MB peak RSS.
    worker_memory_mb: int = 1024
    worker_timeout_s: int = 30
    api_memory_mb: int = 512
    # A long-poll (?wait=20) and its answer, under API Gateway's 29 s integration timeout.
    api_timeout_s: int = 25
    batch_size: int = 10
    # No batching window: a window of W seconds adds up to W to every request while traffic is light and saves
    # invocations only when requests arrive together (docs/costs.md, "The batching window, measured", and table (d)).
    batching_window_s: int = 0
    max_concurrency: int = 5
    max_receive_count: int = 3
    result_ttl_days: int = 7
    # A consumer of the DLQ marks requests FAILED whose last attempt timed out or crashed (the worker cannot).
    dead_letter_consumer: bool = True
    # Seconds the worker caches the SSM model-version parameter before asking again.
    model_version_cache_s: int = 60
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    quota_per_day: int = 0  # 0: no quota on the usage plan
    # The web page's own usage plan (its one key, shared by every visitor): lower than an operator's, so that a flood
    # through the page cannot take the stage's whole limit from operators.
    page_throttle_rate: float = 20.0
    page_throttle_burst: int = 40
    # Long-polls (GET ...?wait=S) waiting at once per pool (the operators'; the page's), across the API function's
    # containers: each holds an invocation for up to 20 s; beyond it `wait` is answered at once. 0: no cap.
    long_poll_slots: int = 30
    # Experiments (infra.experiment, contract.serving): a candidate's share of users, the window after which it is
    # decided (or once min_users are counted in each variant), the days a list's ratings are counted over, and the
    # one-sided non-inferiority test on hit rate that decides (confidence, margin).
    canary_share: float = 0.10
    experiment_window_days: float = 7.0
    experiment_min_users: int = 200
    experiment_horizon_days: float = 7.0
    experiment_confidence: float = 0.95
    experiment_margin: float = 0.02
    auth: str = "api_key"  # "api_key" (key + usage plan) or "iam" (SigV4)
    cors_origins: tuple[str, ...] = ()
    stage_name: str = "v1"
    log_level: str = "INFO"
    log_retention_days: int = 30
    # The artifact directory the deploy uploads and serves; "none": no model (publish one later). Missing: an error.
    artifact: str | None = "artifacts/artifact"
    # CloudWatch alarms: the age of the oldest request message, and the number of API 5xx in 5 minutes.
    oldest_message_alarm_s: int = 300
    api_5xx_threshold: int = 1
    # Write request units the two tables may consume in 5 minutes before an alarm (100,000: USD 0.06 at on-demand
    # prices, 333 a second sustained; the service writes a few per request or event)
    write_units_alarm: int = 100_000
    # A monthly cost budget for the account in USD (AWS Budgets; 0: none), notifying alarm_topic_arn at 80% of the
    # actual and 100% of the forecast spend
    budget_usd: float = 50.0
    # An existing SNS topic for alarm notifications (none by default: no cost at rest).
    alarm_topic_arn: str | None = None
    dashboard: bool = True
    # Set the account's API Gateway CloudWatch Logs role (needed once per account and region for access logs).
    api_cloudwatch_role: bool = True
    # False: `cdk destroy` removes the bucket (and its objects) and the table; True: both are kept.
    retain_data: bool = False
    # The web page (web/) on CloudFront, with /api/* forwarded to the API; needs auth=api_key (a page cannot sign).
    site: bool = True
    # A custom domain for the page and its ACM certificate (us-east-1, as CloudFront requires); both or neither.
    site_domain: str | None = None
    site_certificate_arn: str | None = None
    # Raise to replace the key CloudFront sends: a new secret and API key; the old pair goes once CloudFront has it.
    site_key_version: int = 1
    # WAF in front of the page and /api/*: per-IP rate limit plus AWS managed rules. CloudFront web ACLs exist only
    # in us-east-1: there the stack creates one; elsewhere give an existing one's ARN (web_acl_arn), else none.
    waf: bool = True
    # A REGIONAL web ACL on the API stage (every region): requests per IP per 5 minutes for direct callers of the
    # execute-api endpoint (the page's calls, from CloudFront, are limited per viewer by the CloudFront web ACL).
    api_waf: bool = True
    api_waf_rate_limit: int = 15_000
    web_acl_arn: str | None = None
    # Requests per client IP per 5 minutes before WAF blocks that IP (WAF's minimum is 10).
    waf_rate_limit: int = 1000
    # The retraining loop (docs/retraining.md): a schedule (an EventBridge Scheduler expression) starting the state
    # machine; the SageMaker training job's instance type (a CPU type by default; ml.g5.xlarge for large
    # catalogues), its prebuilt TensorFlow training image ({region}: the stack's), time limit and disk; the gate.
    retrain: bool = True
    retrain_schedule: str = "rate(7 days)"
    retrain_instance_type: str = "ml.m5.xlarge"
    retrain_image: str = (
        "763104351884.dkr.ecr.{region}.amazonaws.com/tensorflow-training:2.19.0-cpu-py312-ubuntu22.04-sagemaker"
    )
    retrain_max_hours: int = 2
    retrain_volume_gb: int = 30
    holdout_share: float = 0.2
    gate_min_users: int = 10
    gate_ndcg_margin: float = 0.005
    gate_rmse_margin: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.architecture not in ("x86_64", "arm64"):
            problems.append(f"architecture must be x86_64 or arm64, not {self.architecture!r}")
        if self.auth not in ("api_key", "iam"):
            problems.append(f"auth must be api_key or iam, not {self.auth!r}")
        if not 3 <= self.max_receive_count <= 5:
            problems.append(f"max_receive_count must be 3-5, not {self.max_receive_count}")
        if not 128 <= self.worker_memory_mb <= 10240 or not 128 <= self.api_memory_mb <= 10240:
            problems.append("Lambda memory must be 128-10240 MB")
        if not 1 <= self.worker_timeout_s <= 900 or not 1 <= self.api_timeout_s <= 29:
            problems.append("worker_timeout_s must be 1-900 and api_timeout_s 1-29 (API Gateway's limit)")
        # 6 x the worker timeout must fit SQS's 12-hour maximum visibility timeout.
        if 6 * self.worker_timeout_s > 43_200:
            problems.append("6 x worker_timeout_s exceeds SQS's 12-hour visibility timeout")
        if not 1 <= self.batch_size <= 10_000:
            problems.append(f"batch_size must be 1-10000, not {self.batch_size}")
        if self.batch_size > 10 and self.batching_window_s < 1:
            problems.append("batch_size above 10 needs batching_window_s >= 1 (SQS event source rule)")
        if not 0 <= self.batching_window_s <= 300:
            problems.append("batching_window_s must be 0-300")
        if not 2 <= self.max_concurrency <= 1000:
            problems.append(f"max_concurrency must be 2-1000 (SQS event source limits), not {self.max_concurrency}")
        if self.log_retention_days not in RETENTION_DAYS:
            problems.append(f"log_retention_days must be one of {RETENTION_DAYS}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            problems.append(f"log_level {self.log_level!r} is not a logging level")
        if self.write_units_alarm < 1 or self.budget_usd < 0:
            problems.append("write_units_alarm must be >= 1 and budget_usd >= 0")
        if self.throttle_rate <= 0 or self.throttle_burst < 1:
            problems.append("throttle_rate must be > 0 and throttle_burst >= 1")
        if not 0 <= self.canary_share < 1 or not 0.5 <= self.experiment_confidence < 1:
            problems.append("canary_share must be in [0, 1) (0: no experiments) and experiment_confidence in [0.5, 1)")
        if self.long_poll_slots < 0:
            problems.append("long_poll_slots must be >= 0 (0: no cap)")
        if not (0 < self.page_throttle_rate <= self.throttle_rate and self.page_throttle_burst >= 1):
            problems.append("page_throttle_rate must be > 0 and at most throttle_rate, page_throttle_burst >= 1")
        problems += self._site_problems()
        problems += self._retrain_problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def _site_problems(self) -> list[str]:
        problems = []
        if self.site and self.auth != "api_key":
            problems.append("site=true needs auth=api_key (the page cannot sign SigV4 requests): pass -c site=false")
        if (self.site_domain is None) != (self.site_certificate_arn is None):
            problems.append("site_domain and site_certificate_arn go together")
        if self.site_certificate_arn and ":acm:us-east-1:" not in self.site_certificate_arn:
            problems.append("site_certificate_arn must be an ACM certificate in us-east-1 (CloudFront's rule)")
        if self.web_acl_arn and not self.waf:
            problems.append("web_acl_arn is set but waf=false")
        if self.web_acl_arn and not CLOUDFRONT_WEB_ACL.fullmatch(self.web_acl_arn):
            problems.append("web_acl_arn must be a CLOUDFRONT-scope WAFv2 web ACL ARN (arn:aws:wafv2:us-east-1:...)")
        if self.site_key_version < 1:
            problems.append("site_key_version must be >= 1")
        if not 10 <= self.api_waf_rate_limit <= 2_000_000_000:
            problems.append(f"api_waf_rate_limit must be 10-2000000000 (WAF's range), not {self.api_waf_rate_limit}")
        if not 10 <= self.waf_rate_limit <= 2_000_000_000:
            problems.append(f"waf_rate_limit must be 10-2000000000 (WAF's range), not {self.waf_rate_limit}")
        return problems

    def _retrain_problems(self) -> list[str]:
        problems = []
        if not re.fullmatch(r"(rate|cron|at)\(.+\)", self.retrain_schedule):
            problems.append(f"retrain_schedule {self.retrain_schedule!r} is not rate(...), cron(...) or at(...)")
        if not self.retrain_instance_type.startswith("ml."):
            problems.append(f"retrain_instance_type must be an ml.* type, not {self.retrain_instance_type!r}")
        if not re.fullmatch(r"\d{12}\.dkr\.ecr\.[^/]+/[^:]+:.+", self.retrain_image):
            problems.append(f"retrain_image {self.retrain_image!r} is not an ECR image URI (ACCOUNT.dkr.ecr.REGION...)")
        if not 1 <= self.retrain_max_hours <= 24 * 5:
            problems.append("retrain_max_hours must be 1-120 (SageMaker's 5-day limit)")
        if not 1 <= self.retrain_volume_gb <= 16384:
            problems.append("retrain_volume_gb must be 1-16384")
        if not 0 < self.holdout_share < 1 or self.gate_min_users < 1:
            problems.append("holdout_share must be between 0 and 1, gate_min_users >= 1")
        if self.gate_ndcg_margin < 0 or self.gate_rmse_margin < 0:
            problems.append("the gate's margins must be >= 0")
        return problems

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StackConfig:
        """Build from a context getter (``app.node.try_get_context``); unset keys keep their defaults."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = get(f.name)
            if raw is None:
                continue
            try:
                values[f.name] = _PARSERS[str(f.type)](raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"context {f.name}={raw!r}: {exc}") from exc
        return cls(**values)

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> StackConfig:
        """Build from a plain mapping (tests, tools)."""
        return cls.from_context(context.get)

    @property
    def artifact_dir(self) -> Path | None:
        """The artifact directory as an absolute path (relative paths are from the repository root)."""
        if self.artifact is None:
            return None
        path = Path(self.artifact)
        return path if path.is_absolute() else ROOT / path


def cdk_json_context(path: Path = ROOT / "cdk.json") -> dict[str, Any]:
    """The ``context`` block of ``cdk.json`` (feature flags and the defaults above)."""
    return json.loads(path.read_text()).get("context", {})
