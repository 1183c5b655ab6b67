"""The local stack serves the web page at / and the API under /api/ too, as the deployed CloudFront site does."""

from __future__ import annotations

import urllib.request

import pytest

from infra.local import WEB_ROOT, LocalStack, static_file
from lambdas.client import Client

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
    for name in ("app.js", "api.js", "render.js", "similar.js", "visitor.js", "style.css"):
        status, headers, body = fetch(f"{stack.url}/{name}")
        assert status == 200 and body == (WEB_ROOT / name).read_bytes(), name
    assert fetch(f"{stack.url}/app.js")[1]["Content-Type"].startswith("text/javascript")
    status, headers, body = fetch(f"{stack.url}/", method="HEAD")
    assert status == 200 and body == b""


def test_the_api_answers_under_api_with_status_urls_there(stack):
    client = Client(f"{stack.url}/api")
    accepted = client.submit({"user_id": 3, "k": 3})
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
    ["/../infra/local.py", "/%2e%2e/README.md", "/%2e%2e/web/index.html", "/a%00.html", "/nope.html", "/api/nope"],
)
def test_anything_else_is_a_json_404(stack, path):
    status, headers, body = fetch(f"{stack.url}{path}")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert b'"code":"not_found"' in body.replace(b" ", b"")


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
