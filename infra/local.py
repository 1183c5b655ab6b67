"""The local stack: the whole request flow on one machine, no AWS account and no Docker.

``python -m infra.local [--port N] [--artifact DIR]`` starts moto in server mode on loopback, creates the queue, its
DLQ (same redrive policy as in AWS), the table (with TTL) and the bucket from :mod:`lambdas.settings`, uploads the
artifact, then serves the HTTP API on ``127.0.0.1`` by turning each request into an API Gateway REST proxy event for
the same handler code that runs in Lambda, and runs a worker loop that long-polls SQS and calls the worker handler
with SQS-shaped batches. As Lambda's event source mapping does, it deletes only the records the handler did not
report in ``batchItemFailures``; failed ones come back after the visibility timeout and, after
``max_receive_count`` receives, SQS (moto) moves them to the DLQ. Ctrl-C or SIGTERM stops it cleanly.

In tests and the demo: ``with LocalStack(artifact_dir) as stack: ... stack.url ...``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3

from infra import web_headers
from lambdas.service import aws, catalogue, model_store
from lambdas.service.logs import logger
from lambdas.settings import PARTITION_KEY, TTL_ATTRIBUTE, Settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARTIFACT = ROOT / "artifacts" / "artifact"
DEFAULT_PORT = 8765
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
MAX_HTTP_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit; the handler enforces the API's 64 KB
ROUTES = (
    (re.compile(r"^/recommendations/?$"), "/recommendations", None),
    (re.compile(r"^/recommendations/(?P<request_id>[^/]+)$"), "/recommendations/{request_id}", "request_id"),
    (re.compile(r"^/openapi\.json$"), "/openapi.json", None),
    (re.compile(r"^/movies/?$"), "/movies", None),
    (re.compile(r"^/model/?$"), "/model", None),
)
# The web page (web/) is served at / and the API also under /api/, as the deployed CloudFront distribution does.
WEB_ROOT = ROOT / "web"
API_PREFIX = "/api"
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


@dataclass
class LambdaContext:
    """The parts of the Lambda context object that Powertools reads."""

    function_name: str
    timeout_s: int = 60
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


def local_settings(suffix: str, endpoint_url: str, cache_dir: Path, visibility_timeout_s: int) -> Settings:
    """The local stack's own resource names; everything else keeps the shared defaults (receive count, TTL...)."""
    return Settings(
        table_name=f"recommender-requests-{suffix}",
        queue_url="",  # known once the queue exists
        bucket_name=f"recommender-local-{suffix}",
        model_cache_dir=str(cache_dir),
        visibility_timeout_s=visibility_timeout_s,
        endpoint_url=endpoint_url,
        region=REGION,
    )


def api_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict:
    """An API Gateway REST proxy event (stage ``local``) for one HTTP request."""
    url = urlsplit(target)
    full_path = unquote(url.path) or "/"
    # /api/recommendations is /recommendations (CloudFront strips the prefix in the deployed stack)
    path = full_path[len(API_PREFIX) :] or "/" if full_path.startswith(API_PREFIX + "/") else full_path
    resource, path_params = "/{proxy+}", {"proxy": path.lstrip("/")}
    for pattern, template, param in ROUTES:
        match = pattern.match(path)
        if match:
            resource, path_params = template, ({param: match.group(param)} if param else None)
            break
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qs(url.query, keep_blank_values=True)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "path": full_path,
            "protocol": "HTTP/1.1",
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent")},
            "domainName": single.get("Host", "127.0.0.1"),
        },
        "body": text if body else None,
        "isBase64Encoded": is_b64,
    }


def sqs_record(message: dict, queue_arn: str) -> dict:
    """One record of an SQS event as Lambda delivers it, from a ReceiveMessage result."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@dataclass(frozen=True)
class Queues:
    queue_url: str
    queue_arn: str
    dlq_url: str


def create_resources(services: aws.Services) -> Queues:
    """Queue + DLQ (redrive after ``max_receive_count``), table (TTL on), bucket, named as ``services.settings``.

    The queue is named after the table (the settings hold the queue's URL, which exists only once it is created).
    """
    s = services.settings
    sqs = services.sqs

    def arn(url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    dlq_url = sqs.create_queue(QueueName=f"{s.table_name}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=s.table_name,
        Attributes={
            "VisibilityTimeout": str(s.queue_visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(dlq_url), "maxReceiveCount": s.max_receive_count}),
        },
    )["QueueUrl"]
    dynamodb = services.table.meta.client
    dynamodb.create_table(
        TableName=s.table_name,
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=s.table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    services.s3.create_bucket(Bucket=s.bucket_name)
    return Queues(queue_url, arn(queue_url), dlq_url)


class LocalStack:
    """Moto server + queue, DLQ, table, bucket + HTTP API + worker loop, in this process."""

    def __init__(
        self,
        artifact_dir: str | Path = DEFAULT_ARTIFACT,
        port: int = 0,
        *,
        visibility_timeout_s: int = 5,
        poll_wait_s: int = 1,
        access_log: bool = False,
    ) -> None:
        self.artifact_dir = Path(artifact_dir)
        self.port = port
        self.visibility_timeout_s = visibility_timeout_s
        self.poll_wait_s = poll_wait_s
        self.access_log = access_log
        self.url = ""
        self.settings: Settings | None = None
        self.services: aws.Services | None = None
        self.dlq_url = ""
        self.queue_arn = ""
        self._stop = threading.Event()
        self._invoke = threading.Lock()  # one "Lambda" at a time: handlers keep per-invocation state in modules
        self._threads: list[threading.Thread] = []
        self._moto = None
        self._http: ThreadingHTTPServer | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.batches = 0  # worker invocations so far (tests wait on it)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start everything; returns when the API answers and the worker polls (cleans up if anything fails)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        if not (self.artifact_dir / "manifest.json").exists():
            raise FileNotFoundError(f"no artifact at {self.artifact_dir}: run `make export` or pass --artifact DIR")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access lines
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, moto_port = self._moto.get_host_and_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="recommender-local-")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        settings = local_settings(
            uuid.uuid4().hex[:8],
            f"http://{host}:{moto_port}",
            Path(self._tmp.name) / "model",
            self.visibility_timeout_s,
        )
        services = aws.Services(settings, session)
        queues = create_resources(services)
        self.dlq_url, self.queue_arn = queues.dlq_url, queues.queue_arn
        services = aws.Services(replace(settings, queue_url=queues.queue_url), session)
        version = model_store.publish(services, self.artifact_dir)
        self.settings = replace(services.settings, model_version=version)
        self.services = aws.Services(self.settings, session)
        aws.configure(self.services)

        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_class(self))
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._spawn(self._http.serve_forever, "local-api")
        self._spawn(self._worker_loop, "local-worker")
        return self

    def stop(self) -> None:
        """Stop the API, let the worker finish its batch, stop moto; idempotent."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        for thread in self._threads:
            thread.join(timeout=self.poll_wait_s + 30)
        self._threads.clear()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        aws.configure(None)
        model_store.clear_cache()
        catalogue.clear_cache()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ the two "Lambdas"

    def invoke_api(self, event: dict) -> dict:
        from lambdas.api.handler import lambda_handler

        with self._invoke:
            return lambda_handler(event, LambdaContext("recommender-api-local", timeout_s=29))

    def invoke_worker(self, event: dict) -> dict:
        from lambdas.worker.handler import lambda_handler

        with self._invoke:
            return lambda_handler(event, LambdaContext("recommender-worker-local", timeout_s=60))

    def _worker_loop(self) -> None:
        sqs = self.services.sqs
        queue_url = self.settings.queue_url
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self.poll_wait_s,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    break
                logger.exception("local worker: receive failed")
                time.sleep(0.5)
                continue
            if not messages:
                continue
            event = {"Records": [sqs_record(m, self.queue_arn) for m in messages]}
            try:
                response = self.invoke_worker(event)
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:
                # an invocation error: Lambda retries the whole batch, so nothing is deleted
                logger.exception("local worker: handler raised; the whole batch will be retried")
                failed = {m["MessageId"] for m in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            self.batches += 1

    # ------------------------------------------------------------------ helpers for tests and the demo

    def queue_depth(self, queue_url: str | None = None) -> int:
        """Visible + in-flight messages in the queue (or in ``queue_url``, e.g. ``self.dlq_url``)."""
        attrs = self.services.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.settings.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _handler_class(stack: LocalStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "recommender-local"

        def _serve(self) -> None:
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._reply(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length")
            size = int(length) if length and length.isdigit() else 0
            if size > MAX_HTTP_BODY:
                self.close_connection = True
                return self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large", "the body is too large")
            body = self.rfile.read(size) if size else b""
            if self.command in ("GET", "HEAD") and not self.path.startswith(API_PREFIX + "/"):
                page = static_file(unquote(urlsplit(self.path).path))
                if page is not None:
                    return self._static(page)
            event = api_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            event["headers"] = {**(event["headers"] or {}), "X-Forwarded-Proto": "http"}
            result = stack.invoke_api(event)
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self.send_response(result["statusCode"])
            headers = dict(result.get("headers") or {})
            for name, values in (result.get("multiValueHeaders") or {}).items():
                headers[name] = values[-1] if isinstance(values, list) else values
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _static(self, page: Path) -> None:
            data = page.read_bytes()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", STATIC_TYPES[page.suffix])
            for name, value in STATIC_HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _reply(self, status: HTTPStatus, code: str, message: str) -> None:
            data = json.dumps({"error": {"code": code, "message": message}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            if stack.access_log:
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM behaves like Ctrl-C: stop serving, finish the batch in hand, exit 0."""
    raise KeyboardInterrupt


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (the caller then stops the stack)."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The request flow locally: moto + the Lambda handlers + HTTP API.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any)")
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT, help="artifact directory (make export)")
    parser.add_argument("--visibility-timeout", type=int, default=5, help="seconds before a failed message retries")
    parser.add_argument("--quiet", action="store_true", help="no access log lines")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    stack = LocalStack(
        args.artifact, args.port, visibility_timeout_s=args.visibility_timeout, access_log=not args.quiet
    )
    try:
        stack.start()
    except (FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        stack.stop()
        return 2
    s = stack.settings
    print(f"model {s.model_version} from {args.artifact}", flush=True)
    print(f"queue {s.queue_url} (DLQ after {s.max_receive_count} receives), table {s.table_name}", flush=True)
    print(f"API URL: {stack.url}", flush=True)
    print(f"Web page: {stack.url}/", flush=True)
    try:
        wait_for_interrupt()
    finally:
        stack.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
