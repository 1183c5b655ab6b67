"""The local HTTP gateway (werkzeug): the web page, and the API as API Gateway + CloudFront would serve it.

* ``/`` and the page's files come from ``web/`` with the deployed site's security headers.
* ``/api/...`` is the API as the page reaches it through CloudFront: only the page's routes pass
  (``infra.site_routes``), the prefix is stripped and the page's API key is added by the gateway, so the browser never
  holds it. ``/site.json`` names the user pool's app client; ``/auth/`` passes the page's Cognito calls (sign-up,
  sign-in, refresh, sign-out, deleting the account) to the user pool's endpoint (moto's), as CloudFront passes them
  to Cognito's.
* Any other path is the API as API Gateway serves it: unknown routes get a JSON 404, undeclared methods a JSON 405
  with ``Allow``, a missing or wrong ``x-api-key`` a JSON 403, a call over its usage plan's or the stage's
  throttle a JSON 429 (:mod:`infra.local.throttle`), a personal route (``/me...``) without a valid token
  a JSON 401 (:mod:`infra.local.auth`, as API Gateway's Cognito authoriser); the rest becomes a REST proxy event for
  the API handler, with the key's id (the page's or the operator's) and the token's claims where API Gateway puts
  them. Every answer is JSON, down to an HTTP request the server cannot parse.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from infra import site_routes, web_headers
from infra.local import endpoint
from infra.local.auth import TokenError, TokenVerifier, UserPool
from infra.local.proxy_event import api_event, route_of
from infra.local.throttle import OPERATOR, PAGE, Throttle

ROOT = Path(__file__).resolve().parents[2]
WEB_ROOT = ROOT / "web"
API_PREFIX = "/api"
API_KEY_HEADER = site_routes.API_KEY_HEADER
# The page's Cognito calls (web/auth.js), at /auth/ on the page's origin.
AUTH_PATH = "/auth"
COGNITO_TARGET_PREFIX = "AWSCognitoIdentityProviderService."
AUTH_OPERATIONS = frozenset(
    {"SignUp", "ConfirmSignUp", "ResendConfirmationCode", "InitiateAuth", "GlobalSignOut", "DeleteUser", "GetUser"}
)
# The ids API Gateway would report for the two keys (requestContext.identity.apiKeyId): the page's, which the
# gateway adds to /api/ calls, and the operator's, which the caller sends.
PAGE_KEY_ID = "local-page-key"
OPERATOR_KEY_ID = "local-operator-key"
MAX_HTTP_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit; the handler enforces the API's 64 KB
LISTEN_BACKLOG = endpoint.LISTEN_BACKLOG  # pending connections the kernel queues (http.server's default is 5)
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The same security headers as the deployed site's CloudFront response headers policy (infra/web_headers.py),
# so that a page breaking the CSP fails the browser tests here.
STATIC_HEADERS = {
    "Content-Security-Policy": web_headers.CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": web_headers.REFERRER_POLICY,
    "Cache-Control": "no-cache",
}


def static_file(path: str, root: Path = WEB_ROOT) -> Path | None:
    """The file under ``root`` that ``path`` names (``/`` is index.html), or None (never outside ``root``)."""
    rel = path.lstrip("/") or "index.html"
    if any(part in ("", ".", "..") for part in rel.split("/")) or "\\" in rel:
        return None
    try:
        candidate = (root / rel).resolve()
    except (OSError, ValueError):  # e.g. a NUL byte in the path
        return None
    if root.resolve() not in candidate.parents or not candidate.is_file():
        return None
    if candidate.suffix not in STATIC_TYPES:
        return None
    return candidate


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, content_type="application/json", headers=headers)


class Gateway:
    """The WSGI application; ``invoke_api(event) -> proxy response`` is the API function."""

    def __init__(
        self,
        invoke_api: Callable[[dict], dict],
        api_key: str | None,
        web_root: Path = WEB_ROOT,
        user_pool: UserPool | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        """``user_pool``: whose tokens the personal routes take (None: sign-in is off, they answer 401).
        ``throttle``: the usage plans' and the stage's limits (None: none)."""
        self.invoke_api = invoke_api
        self.api_key = api_key
        self.web_root = web_root
        self.user_pool = user_pool
        self.verifier = TokenVerifier(user_pool) if user_pool is not None else None
        self.throttle = throttle

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_HTTP_BODY
        try:
            response = self.dispatch(request)
        except RequestEntityTooLarge:
            response = error(413, "body_too_large", f"the body is over {MAX_HTTP_BODY} bytes")
        except HTTPException as exc:
            response = error(exc.code or 400, "bad_request", exc.description or "bad request")
        except Exception:
            logging.getLogger("infra.local").exception("gateway error")
            response = error(500, "internal_error", "internal error")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        full_path = request.path
        method = request.method
        via_cdn = full_path.startswith(API_PREFIX + "/")
        path = full_path[len(API_PREFIX) :] if via_cdn else full_path
        if full_path.rstrip("/") == AUTH_PATH:
            return self._auth(request)
        if method in ("GET", "HEAD") and not via_cdn:
            if full_path == "/" + site_routes.SITE_CONFIG:
                client_id = self.user_pool.client_id if self.user_pool else None
                config = json.dumps(site_routes.site_config(client_id))
                return Response(config, content_type=STATIC_TYPES[".json"], headers=STATIC_HEADERS)
            page = static_file(full_path, self.web_root)
            if page is not None:
                return self._static(page)
        if via_cdn and not site_routes.allowed(method, path):
            status, headers, body = site_routes.refusal(method, path)
            return Response(
                body,
                status=status,
                content_type="application/json",
                headers={"Cache-Control": "no-store", **headers},  # as the CloudFront Function answers
            )
        route = route_of(path)
        if route is None:
            return error(404, "not_found", f"no route {method} {path}")
        allowed = route.methods  # as API Gateway: no HEAD on the API's routes
        if method not in allowed:
            allow = ", ".join(allowed)
            return error(405, "method_not_allowed", f"{method} is not allowed here; use {allow}", {"Allow": allow})
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != API_KEY_HEADER or not via_cdn]
        key_id = PAGE_KEY_ID if via_cdn else OPERATOR_KEY_ID
        if self.api_key:
            if via_cdn:
                headers.append((API_KEY_HEADER, self.api_key))  # what CloudFront's origin header does
            elif not hmac.compare_digest(request.headers.get(API_KEY_HEADER, ""), self.api_key):
                return error(403, "forbidden", f"a valid API key is required in the {API_KEY_HEADER} header")
        claims = None
        if route.personal:
            if self.verifier is None:
                return error(401, "unauthorized", "sign-in is not set up on this stack")
            try:
                claims = self.verifier.claims(request.headers.get("Authorization"))
            except TokenError as exc:
                return error(401, "unauthorized", str(exc))
        # As API Gateway: the usage plan's throttle after the key and the authoriser (a refused call costs no token)
        if self.throttle is not None and not self.throttle.allow(PAGE if via_cdn else OPERATOR):
            # API Gateway's THROTTLED answer, in the shape the stack's Default4xx gateway response gives it
            return error(429, "throttled", "Too Many Requests")
        headers.append(("X-Forwarded-Proto", request.scheme))
        event = api_event(
            "GET" if method == "HEAD" else method,
            path,
            request.args.to_dict(flat=False),
            headers,
            request.get_data(cache=False),
            request.remote_addr or "127.0.0.1",
            full_path=full_path,
            api_key_id=key_id,
            claims=claims,
        )
        return self._proxy_response(self.invoke_api(event))

    def _auth(self, request: Request) -> Response:
        """A Cognito API call of the page's, passed to the user pool's endpoint unsigned, as a browser sends it to
        Cognito (only the operations the page uses: the others need AWS credentials anyway)."""
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(COGNITO_TARGET_PREFIX)
        if request.method != "POST" or operation == target or operation not in AUTH_OPERATIONS:
            return error(403, "forbidden", f"{request.method} {target or AUTH_PATH} is not a sign-in call")
        if self.user_pool is None:
            return error(404, "not_found", "sign-in is not set up on this stack")
        if operation == "DeleteUser":
            return self._delete_user(request.get_data(cache=False))
        region = self.user_pool.region
        forwarded = urllib.request.Request(
            self.user_pool.endpoint_url.rstrip("/") + "/",
            data=request.get_data(cache=False),
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": target,
                # moto's server finds the service by the credential scope of a signature; Cognito needs none here
                "Authorization": f"AWS4-HMAC-SHA256 Credential=local/20260101/{region}/cognito-idp/aws4_request",
            },
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=10) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as refused:
            status, body = refused.code, refused.read()
        except OSError:
            return error(503, "auth_unavailable", "the sign-in service cannot be reached")
        headers = {"Cache-Control": "no-store"}
        return Response(body, status=status, content_type="application/x-amz-json-1.1", headers=headers)

    def _delete_user(self, body: bytes) -> Response:
        """Cognito's DeleteUser (a person deleting their own account with their access token), which moto 5.2.5
        lacks: the same two steps Cognito takes, the token's user (GetUser) and that user deleted (AdminDeleteUser)."""
        import boto3
        from botocore.exceptions import ClientError

        pool = self.user_pool
        cognito = boto3.client(
            "cognito-idp",
            endpoint_url=pool.endpoint_url,
            region_name=pool.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        try:
            token = json.loads(body or b"{}").get("AccessToken", "")
            username = cognito.get_user(AccessToken=token)["Username"]
            cognito.admin_delete_user(UserPoolId=pool.pool_id, Username=username)
        except ClientError as exc:
            found = exc.response.get("Error", {})
            answer = {"__type": found.get("Code", "NotAuthorizedException"), "message": found.get("Message", "")}
            return Response(json.dumps(answer), status=400, content_type="application/x-amz-json-1.1")
        except (ValueError, AttributeError):
            answer = {"__type": "InvalidParameterException", "message": "the body is not a JSON object"}
            return Response(json.dumps(answer), status=400, content_type="application/x-amz-json-1.1")
        return Response("{}", status=200, content_type="application/x-amz-json-1.1")

    @staticmethod
    def _proxy_response(result: dict) -> Response:
        """The HTTP answer of a proxy integration's result (werkzeug leaves the body out for HEAD)."""
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        headers: dict[str, str] = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = str(values[-1] if isinstance(values, list) else values)
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "connection")}
        return Response(data, status=result["statusCode"], headers=headers)

    @staticmethod
    def _static(page: Path) -> Response:
        return Response(page.read_bytes(), content_type=STATIC_TYPES[page.suffix], headers=STATIC_HEADERS)


class _RequestHandler(WSGIRequestHandler):
    # http.server's own refusals (a request line it cannot parse, a URI over 64 KB) as JSON, not an HTML page
    error_message_format = '{"error":{"code":"http_%(code)d","message":"the HTTP request could not be read"}}'
    error_content_type = "application/json"


class _Server(ThreadedWSGIServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def make_server(app: Any, port: int = 0, access_log: bool = False, fd: Any = None) -> ThreadedWSGIServer:
    """A threaded server on 127.0.0.1 (a thread per connection, keep-alive, a 1,024-connection backlog), or on the
    listening socket ``fd`` (shared by several processes)."""
    log = logging.getLogger("werkzeug")
    log.setLevel(logging.INFO if access_log else logging.ERROR)
    if access_log and not log.handlers:
        log.addHandler(logging.StreamHandler(sys.stderr))
    if fd is not None:
        return _Server("127.0.0.1", 0, app, handler=_RequestHandler, fd=fd.fileno())
    return _Server("127.0.0.1", port, app, handler=_RequestHandler)
