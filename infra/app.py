"""CDK app entry point (``cdk.json``: ``python -m infra.app``): one stack, validated by cdk-nag's AWS Solutions pack."""

from __future__ import annotations

import os
import sys

# Before the jsii runtime starts: its Node version banner is noise in synth output (README says which Node to use).
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, StackConfig
from infra.stack import RecommenderStack


def build_app(app: cdk.App | None = None) -> cdk.App:
    """The app with the stack configured from context; cdk-nag runs at synth and any unacknowledged finding fails it."""
    app = app or cdk.App()
    config = StackConfig.from_context(app.node.try_get_context)
    # Environment-agnostic: account and region come from the credentials and profile used at deploy time.
    RecommenderStack(app, config.stack_name, config=config)
    # cdk-nag v3 is a CDK policy-validation plugin: findings go to validation-report.json and fail the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def main() -> None:
    try:
        build_app().synth()
    except ConfigError as exc:  # a wrong -c value or a missing artifact: say what to do, not a traceback
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
