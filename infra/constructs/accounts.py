"""People's accounts: an Amazon Cognito user pool (sign-up with an e-mail address, verified by a code Cognito mails)
and the web page's app client (no secret: it runs in a browser; the Cognito API's user-password and refresh-token
flows over TLS, and SRP for clients that want it).

API Gateway's Cognito authoriser checks the pool's ID tokens on the personal routes (``/me...``,
:mod:`infra.constructs.api`); the local stack's gateway checks moto's the same way (:mod:`infra.local.auth`).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import PASSWORD_MIN_LENGTH
from infra.nag import acknowledge

ID_TOKEN_HOURS = 1  # how long a stolen ID token works; the page refreshes it with the refresh token
REFRESH_TOKEN_DAYS = 30  # how long a person stays signed in without typing their password


class Accounts(Construct):
    """``user_pool`` and ``client`` (the page's)."""

    def __init__(self, scope: Construct, id: str, *, retain_data: bool) -> None:
        super().__init__(scope, id)
        self.user_pool = cognito.UserPool(
            self,
            "People",
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),  # a changed address counts once verified
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_digits=True,
                require_uppercase=False,
                require_symbols=False,
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=retain_data,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_data else cdk.RemovalPolicy.DESTROY,
        )
        self.client = self.user_pool.add_client(
            "Web",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=cdk.Duration.hours(ID_TOKEN_HOURS),
            access_token_validity=cdk.Duration.hours(ID_TOKEN_HOURS),
            refresh_token_validity=cdk.Duration.days(REFRESH_TOKEN_DAYS),
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG1",
            f"At least {PASSWORD_MIN_LENGTH} characters with a lower-case letter and a digit, no upper-case or symbol "
            "rule: NIST SP 800-63B advises length over composition rules, which push people to predictable "
            "patterns. Cognito still counts failed sign-ins and locks an account out after repeated failures.",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (an authenticator app, no SMS): the account guards movie ratings, not money or "
            "personal records, and requiring a second factor would stop most people from signing up; a person "
            "may turn it on.",
        )
        for rule in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            acknowledge(
                self.user_pool,
                rule,
                "Threat protection (compromised-credential and adaptive authentication checks) needs Cognito's Plus "
                "plan, billed per monthly active user above the Essentials plan used here; turn it on with the "
                "feature plan when the user base warrants it.",
            )
