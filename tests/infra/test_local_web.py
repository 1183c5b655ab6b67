"""The local stack serves the web page at / and the API under /api/ too, as the deployed CloudFront site does."""

from __future__ import annotations

import json
import urllib.request

import pytest
import werkzeug.test

from infra.client import Client
from infra.local import WEB_ROOT, LocalStack, static_file
from infra.local.gateway import Gateway

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def stack(small_artifact):
    with LocalStack(small_artifact, port=0) as running:
        yield running


def fetch(url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_page_and_its_modules_are_served_with_security_headers(stack):
    status, headers, body = fetch(f"{stack.url}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script type="module" src="app.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    for name in ("app.js", "api.js", "auth.js", "account.js", "render.js", "similar.js", "visitor.js", "style.css"):
        status, headers, body = fetch(f"{stack.url}/{name}")
        assert status == 200 and body == (WEB_ROOT / name).read_bytes(), name
    assert fetch(f"{stack.url}/app.js")[1]["Content-Type"].startswith("text/javascript")
    status, headers, body = fetch(f"{stack.url}/", method="HEAD")
    assert status == 200 and body == b""


def test_the_api_answers_under_api_with_status_urls_there(stack):
    client = Client(f"{stack.url}/api")
    accepted = client.submit({"similar_to": 1, "k": 3})
    assert accepted["status_url"] == f"{stack.url}/api/recommendations/{accepted['request_id']}"
    assert client.wait(accepted["request_id"], timeout_s=30)["status"] == "COMPLETED"
    assert client.request("GET", "/movies?q=movie").status == 200
    # AND at the root, as API Gateway serves it: with the API key only (the page's /api/ adds it, as CloudFront does)
    assert Client(stack.url, stack.api_key).request("GET", "/model").status == 200
    denied = Client(stack.url).request("GET", "/model")
    assert denied.status == 403 and denied.body["error"]["code"] == "forbidden"
    assert Client(stack.url, "wrong").request("GET", "/model").status == 403


@pytest.mark.parametrize(
    "path",
    ["/../infra/local.py", "/%2e%2e/README.md", "/%2e%2e/web/index.html", "/a%00.html", "/nope.html"],
)
def test_anything_else_is_a_json_404(stack, path):
    status, headers, body = fetch(f"{stack.url}{path}")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert b'"code":"not_found"' in body.replace(b" ", b"")


def test_the_page_reaches_only_its_own_routes_and_forgetting_a_user_needs_a_key(stack):
    """/api/ passes what the page does (infra.site_routes); events for any user, DELETE /users/{id} and unknown
    routes get a JSON 403 there (another method on a page's path 405), as from the deployed CloudFront Function, and
    nothing is stored or deleted; with the API key it works."""
    page = Client(f"{stack.url}/api")
    events = [("POST", "/events")]
    refusals = (("DELETE", "/users/3"), ("GET", "/nope"))
    operator = Client(stack.url, stack.api_key)
    assert operator.request("POST", "/events", {"user_id": 3, "events": [{"movie_id": 1, "rating": 4}]}).status == 200
    for method, path in (*events, *refusals):
        refused = page.request(method, path)
        assert refused.status == 403, (method, path)
        assert refused.body["error"] == {
            "code": "forbidden",
            "message": f"{method} {path} is not available through the web page; call the API with an API key",
        }
    # another method on one of the page's own paths: 405 with Allow, as the API answers an undeclared method
    for method, path, allow in (("PUT", "/recommendations", "POST"), ("OPTIONS", "/model", "GET")):
        refused = page.request(method, path)
        assert (refused.status, refused.headers.get("Allow")) == (405, allow), (method, path)
        assert refused.body["error"] == {
            "code": "method_not_allowed",
            "message": f"{method} is not allowed here; use {allow}",
        }
    keyed = operator.request("DELETE", "/users/3")
    assert keyed.status == 200 and keyed.body["events_deleted"] == 1
    status, _, body = fetch(f"{stack.url}/site.json")
    assert status == 200 and json.loads(body) == {"auth": {"client_id": stack.user_pool.client_id}}


def test_a_visitor_asks_only_for_what_needs_no_users_data(stack):
    """Through the page, without signing in: similar movies and recommendations from ratings sent inline pass; a
    user's recommendations or profile, and a batch, are refused (403), nothing queued."""
    page = Client(f"{stack.url}/api")
    assert page.request("POST", "/recommendations", {"ratings": {"1": 5}}).status == 202
    for body in ({"user_id": 3}, {"profile_of": 3}, {"user_ids": [1, 2]}):
        refused = page.request("POST", "/recommendations", body)
        assert refused.status == 403 and refused.body["error"]["code"] == "forbidden", body
    assert "sign in" in page.request("POST", "/recommendations", {"user_id": 3}).body["error"]["message"]


def test_the_pages_sign_in_calls_reach_the_user_pool_and_nothing_else_does(stack):
    """/auth passes the page's Cognito calls to moto's Cognito, as CloudFront passes them to Cognito; an operation
    the page does not use (an admin one) is refused before it leaves, and a gateway without a pool has no sign-in."""

    def cognito(operation: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{stack.url}/auth/",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    client_id = stack.user_pool.client_id
    email, password = "web@example.com", "a password 1"
    attributes = [{"Name": "email", "Value": email}]
    status, signed = cognito(
        "SignUp", {"ClientId": client_id, "Username": email, "Password": password, "UserAttributes": attributes}
    )
    assert status == 200 and signed["UserConfirmed"] is False
    confirm = {"ClientId": client_id, "Username": email, "ConfirmationCode": "123456"}
    assert cognito("ConfirmSignUp", confirm)[0] == 200
    credentials = {"USERNAME": email, "PASSWORD": password}
    status, tokens = cognito(
        "InitiateAuth", {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": credentials}
    )
    assert status == 200 and tokens["AuthenticationResult"]["IdToken"]
    me = Client(f"{stack.url}/api", token=tokens["AuthenticationResult"]["IdToken"]).me()
    assert me["email"] == email and me["linked"] is False
    status, refused = cognito("AdminDeleteUser", {"UserPoolId": stack.user_pool.pool_id, "Username": email})
    assert status == 403 and refused["error"]["code"] == "forbidden"
    bare = werkzeug.test.Client(Gateway(lambda event: {"statusCode": 200, "body": "{}"}, api_key="k"))
    assert bare.get("/site.json").json == {"auth": None}
    answer = bare.post("/auth/", data="{}", headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.SignUp"})
    assert answer.status_code == 404


def test_static_files_never_leave_the_web_folder(tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("x")
    (root / "secret.py").write_text("x")
    (tmp_path / "outside.html").write_text("not to be served")
    (root / "link.html").symlink_to(tmp_path / "outside.html")
    assert static_file("/", root) == (root / "index.html").resolve()
    assert static_file("/index.html", root) == (root / "index.html").resolve()
    assert static_file("/secret.py", root) is None  # not a web file type
    for path in ("/../outside.html", "/x/../../outside.html", "/link.html", "/a\x00.html", "//outside.html"):
        assert static_file(path, root) is None, path
