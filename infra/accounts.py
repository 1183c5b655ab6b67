"""People's accounts, for an operator: link an account to a user of the training data, unlink it, show it; and,
on the local stack only, create a confirmed account and print its ID token (to try the ``/me`` routes by hand).

    python -m infra.accounts --local link --email anna@example.com 19
    python -m infra.accounts --stack MovieRecommender show --email anna@example.com
    python -m infra.accounts --local sign-up anna@example.com 'a password1'

An account is found by its e-mail address (Cognito ``ListUsers``) or its ``sub``. Linking says that the person who
signs in with it is that user of the data set: their recommendations are that user's, and deleting the account's
data forgets that user (:mod:`lambdas.service.accounts`). Exit status 0 on success, 1 for a refusal (no such
account, already linked), 2 for a usage error or no stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.config import OUTPUT_EVENTS_TABLE, OUTPUT_USER_POOL, OUTPUT_USER_POOL_CLIENT
from infra.local.connection import FAKE, NoLocalStack, local_aws, target_arguments
from infra.publish_model import PublishError, stack_outputs
from lambdas.service import accounts
from lambdas.service.aws import Services
from lambdas.service.errors import ServiceError


class AccountError(Exception):
    """A refusal the operator should read (exit status 1)."""


@dataclass(frozen=True)
class Target:
    services: Services  # the events table
    cognito: Any
    pool_id: str
    client_id: str


def local_target() -> Target:
    from infra.client import local_connection_file

    aws = local_aws()
    found = json.loads(local_connection_file().read_text())
    if not found.get("user_pool_id"):
        raise NoLocalStack("the running local stack has no user pool: restart make local with this version")
    region = aws.settings.region
    session = boto3.session.Session(region_name=region, **FAKE)
    cognito = session.client("cognito-idp", endpoint_url=found["endpoint"])
    return Target(Services(aws.settings, session), cognito, found["user_pool_id"], found["user_pool_client_id"])


def running_target(stack: Any) -> Target:
    """A :class:`~infra.local.stack.LocalStack` started in this process (tests, the fuzzer, the demo)."""
    pool = stack.user_pool
    cognito = stack.services.session.client("cognito-idp", endpoint_url=stack.endpoint_url, region_name=pool.region)
    return Target(stack.services, cognito, pool.pool_id, pool.client_id)


def stack_target(stack: str, region: str | None) -> Target:
    from lambdas.settings import Settings

    session = boto3.session.Session(region_name=region)
    required = (OUTPUT_EVENTS_TABLE, OUTPUT_USER_POOL, OUTPUT_USER_POOL_CLIENT)
    outputs = stack_outputs(session.client("cloudformation"), stack, required, "deployed before accounts?")
    settings = Settings(events_table_name=outputs[OUTPUT_EVENTS_TABLE], region=session.region_name)
    return Target(
        Services(settings, session),
        session.client("cognito-idp"),
        outputs[OUTPUT_USER_POOL],
        outputs[OUTPUT_USER_POOL_CLIENT],
    )


def find_sub(target: Target, email: str | None, sub: str | None) -> str:
    """The account's ``sub``: given, or looked up by e-mail address in the pool."""
    if sub:
        return sub
    escaped = (email or "").replace("\\", "\\\\").replace('"', '\\"')
    users = target.cognito.list_users(UserPoolId=target.pool_id, Filter=f'email = "{escaped}"', Limit=2)["Users"]
    if not users:
        raise AccountError(f"no account with the e-mail address {email!r}")
    attributes = {a["Name"]: a["Value"] for a in users[0].get("Attributes", [])}
    return attributes.get("sub") or users[0]["Username"]


def sign_up(target: Target, email: str, password: str) -> dict[str, str]:
    """Create and confirm an account (as the page's sign-up plus the e-mailed code), sign in; its tokens."""
    signed = target.cognito.sign_up(
        ClientId=target.client_id,
        Username=email,
        Password=password,
        UserAttributes=[{"Name": "email", "Value": email}],
    )
    target.cognito.admin_confirm_sign_up(UserPoolId=target.pool_id, Username=email)
    tokens = target.cognito.initiate_auth(
        ClientId=target.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )["AuthenticationResult"]
    return {"sub": signed["UserSub"], "id_token": tokens["IdToken"], "refresh_token": tokens["RefreshToken"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.accounts", description=__doc__.split("\n")[0])
    target_arguments(p, "the running local stack (artifacts/local-stack.json)")
    commands = p.add_subparsers(dest="command", required=True)
    for name, text in (("link", "link an account to a data-set user"), ("unlink", "remove the link"), ("show", "")):
        cmd = commands.add_parser(name, help=text or "the account's user id")
        who = cmd.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--sub")
        if name == "link":
            cmd.add_argument("user_id", help="the data-set user's id")
    signup = commands.add_parser("sign-up", help="local stack only: a confirmed account and its ID token")
    signup.add_argument("email")
    signup.add_argument("password")
    a = p.parse_args(argv)
    try:
        if a.command == "sign-up" and not a.local:
            p.error("sign-up is for the local stack only (people sign up on the page)")
        target = local_target() if a.local else stack_target(a.stack, a.region)
        if a.command == "sign-up":
            print(json.dumps(sign_up(target, a.email, a.password), indent=1))
            return 0
        sub = find_sub(target, a.email, a.sub)
        if a.command == "link":
            account = accounts.link(target.services, sub, a.user_id)
        elif a.command == "unlink":
            account = accounts.unlink(target.services, sub)
        else:
            account = accounts.account(target.services, sub)
    except (AccountError, ServiceError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except (NoLocalStack, PublishError, BotoCoreError, ClientError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    linked = f"linked to data-set user {account.user_id}" if account.linked else "not linked"
    print(f"account {account.sub}: {linked}; its data are kept under user id {account.user_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
