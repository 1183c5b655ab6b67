"""People's accounts on the local stack: moto's Cognito issues the tokens, the gateway verifies them as API Gateway's
Cognito authoriser does, and each person reaches only their own data through the ``/me`` routes."""

from __future__ import annotations

import base64
import gzip
import json
import time
from importlib import resources

import jwt
import pytest

from infra import accounts as accounts_cli
from infra.client import MY_REQUESTS, Client
from infra.local import LocalStack
from infra.local.__main__ import write_connection
from infra.local.connection import stack_connection
from lambdas.service import events as events_service
from tests.openapi_contract import assert_matches

pytest.importorskip("onnxruntime")

PASSWORD = "correct horse 1"
PERSONAL = [
    ("GET", "/me", None),
    ("DELETE", "/me", None),
    ("POST", "/me/recommendations", {"k": 3}),
    ("POST", "/me/profile", None),
    ("GET", "/me/requests/8c2d1a7e-3b7f-4a52-9a43-2f1d2c3b4a5e", None),
    ("POST", "/me/events", {"events": [{"movie_id": 1, "rating": 4}]}),
]


@pytest.fixture(scope="module")
def stack(small_artifact):
    with LocalStack(small_artifact, port=0, workers=1, api_processes=1) as running:
        yield running


@pytest.fixture(scope="module")
def target(stack) -> accounts_cli.Target:
    """The operator's view of the local stack, as ``python -m infra.accounts --local`` builds it."""
    return accounts_cli.running_target(stack)


@pytest.fixture(scope="module")
def cognito(target):
    return target.cognito


@pytest.fixture(scope="module")
def people(target) -> dict[str, dict]:
    """GIVEN two people who signed up and in (Anna, Ben)."""
    return {name: accounts_cli.sign_up(target, f"{name}@example.com", PASSWORD) for name in ("anna", "ben")}


def as_person(stack, token: str | None, page: bool = False) -> Client:
    """A person's client: through the page's /api/ (no key: the gateway adds the page's) or with the operator key."""
    return Client(f"{stack.url}/api", token=token) if page else Client(stack.url, stack.api_key, token=token)


def moto_private_key() -> dict:
    """moto's signing key (one for every pool): with it a test forges tokens whose only fault is the one it wants."""
    raw = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))


def forged(stack, claims: dict) -> str:
    pool = stack.user_pool
    now = int(time.time())
    base = {
        "iss": pool.issuer,
        "aud": pool.client_id,
        "sub": "0b5e6c1e-4d1f-4bb4-9d0e-aaaaaaaaaaaa",
        "token_use": "id",
        "iat": now,
        "exp": now + 3600,
    }
    key = jwt.PyJWK(moto_private_key())
    return jwt.encode({**base, **claims}, key.key, algorithm="RS256", headers={"kid": key.key_id})


def test_a_forged_token_with_nothing_wrong_passes(stack):
    """The forging helper itself makes valid tokens, so the refusals below are for the one fault each has."""
    status, doc = call(stack, "GET", "/me", None, forged(stack, {}))
    assert status == 200 and doc["sub"] == "0b5e6c1e-4d1f-4bb4-9d0e-aaaaaaaaaaaa"


def call(stack, method: str, path: str, body, token: str | None, page: bool = False) -> tuple[int, dict]:
    resp = as_person(stack, token, page).request(method, path, body)
    return resp.status, resp.body


def bad_tokens(stack, cognito, people) -> dict[str, str | None]:
    anna = people["anna"]["id_token"]
    head, payload, signature = anna.split(".")
    flipped = base64.urlsafe_b64encode(bytes([b ^ 1 for b in base64.urlsafe_b64decode(signature + "==")]))
    other_pool = cognito.create_user_pool(PoolName="another")["UserPool"]["Id"]
    other_client = cognito.create_user_pool_client(UserPoolId=stack.user_pool.pool_id, ClientName="other")
    access = cognito.initiate_auth(
        ClientId=stack.user_pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "anna@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    return {
        "no token": None,
        "expired": forged(stack, {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}),
        "another pool": forged(stack, {"iss": f"https://cognito-idp.us-east-1.amazonaws.com/{other_pool}"}),
        "another client": forged(stack, {"aud": other_client["UserPoolClient"]["ClientId"]}),
        "altered signature": f"{head}.{payload}.{flipped.decode().rstrip('=')}",
        "altered claims": f"{head}.{payload[:-4]}AAAA.{signature}",
        "an access token": access,
        "not a JWT": "hello",
    }


def test_every_personal_route_refuses_every_bad_token_and_nothing_is_written(stack, cognito, people):
    before = stack.services.table.scan(ConsistentRead=True)["Count"]
    for name, token in bad_tokens(stack, cognito, people).items():
        for method, path, body in PERSONAL:
            for page in (False, True):
                status, doc = call(stack, method, path, body, token, page)
                assert status == 401, (name, method, path, page, doc)
                assert doc["error"]["code"] == "unauthorized", doc
    assert stack.services.table.scan(ConsistentRead=True)["Count"] == before
    assert events_service.for_user(stack.services, people["anna"]["sub"]) == []


def test_two_people_each_reach_only_their_own_data(stack, people, tmp_path, monkeypatch, capsys):
    anna, ben = (as_person(stack, people[n]["id_token"], page=True) for n in ("anna", "ben"))
    # GIVEN Anna is linked by an operator to user 19 of the data set (the CLI, by e-mail address)
    connection = tmp_path / "local-stack.json"
    write_connection(stack.url, stack.api_key, connection, **stack_connection(stack))
    monkeypatch.setenv("RECOMMENDER_LOCAL_CONNECTION", str(connection))
    assert accounts_cli.main(["--local", "link", "--email", "anna@example.com", "19"]) == 0
    assert "linked to data-set user 19" in capsys.readouterr().out
    assert accounts_cli.main(["--local", "link", "--email", "ben@example.com", "19"]) == 1  # one user, one account
    assert "linked to another account" in capsys.readouterr().err
    assert anna.me()["user_id"] == "19" and anna.me()["linked"] is True
    ben_sub = people["ben"]["sub"]
    assert ben.me() == {"sub": ben_sub, "user_id": ben_sub, "linked": False, "email": "ben@example.com"}

    # WHEN each asks for their recommendations THEN each gets their own
    mine = anna.my_recommendations({"k": 5})
    assert_matches("GET", "/me/requests/{request_id}", 200, mine)
    assert mine["result"]["user_id"] == 19 and mine["result"]["strategy"] == "personalized"
    ben.post_my_events([{"movie_id": 1, "rating": 5}, {"movie_id": 2, "rating": 4}])
    his = ben.my_recommendations({"k": 5})
    assert his["result"]["strategy"] == "cold_start"

    # AND neither reads the other's request; the page without a token cannot either
    status, doc = call(stack, "GET", f"{MY_REQUESTS}/{mine['request_id']}", None, people["ben"]["id_token"], True)
    assert status == 403 and doc["error"]["code"] == "forbidden"
    status, doc = call(stack, "GET", f"/recommendations/{mine['request_id']}", None, None, True)
    assert status == 403 and doc["error"]["code"] == "forbidden"
    # an operator reads anyone's
    assert Client(stack.url, stack.api_key).status(mine["request_id"])["status"] == "COMPLETED"

    # WHEN Ben deletes his data THEN his events are gone and Anna's user keeps hers
    anna.post_my_events([{"movie_id": 3, "rating": 3}])
    assert ben.forget_me()["events_deleted"] == 2
    assert events_service.for_user(stack.services, people["ben"]["sub"]) == []
    assert len(events_service.for_user(stack.services, "19")) == 1
