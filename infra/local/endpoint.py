"""The local AWS endpoint: moto's server (SQS, DynamoDB, S3) in its own process, with fault injection.

``python -m infra.local.endpoint [--port N]`` prints ``READY http://127.0.0.1:PORT`` once it serves. Every AWS call
of the local stack (the API handler, the worker processes, the tests) goes through it, so a fault set here reaches
every process: ``POST /_local/faults`` with ``{"rules": [...]}`` replaces the rules, ``GET`` lists them with their
hit counts, ``DELETE`` clears them. A rule matches a service (``dynamodb``, ``sqs``, ``s3``) and optionally an action
(``UpdateItem``, ``SendMessage``, ``GetObject``...) and answers with an AWS-shaped error instead of moto (``status``,
``code``), or first waits ``delay_s`` and then lets the call through; ``times`` limits how often it fires.

moto runs with the speed-ups of :mod:`infra.local.moto_patches`; on a moto they were not written for, the endpoint
prints ``FAILED MotoPatchError: ...`` (naming the patch) instead of ``READY`` and exits 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from infra.local import moto_patches

CONTROL_PATH = "/_local/faults"
FAILED = "FAILED "  # the first line instead of READY: the endpoint refuses to start, and why
LISTEN_BACKLOG = 1024  # pending connections the kernel queues before refusing one
_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/")
_S3_ACTIONS = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Fault:
    """One injected fault (``Fault("dynamodb", "UpdateItem", delay_s=1)`` in tests and scripts, sent to a running
    endpoint by :func:`inject`, validated again there); ``times`` None: every matching call."""

    service: Annotated[str, Field(pattern=r"^(dynamodb|sqs|s3)$")]
    action: str | None = None
    status: Annotated[int, Field(ge=400, le=599)] = 503
    code: str = "ServiceUnavailable"
    delay_s: Annotated[float, Field(ge=0, le=60, description="> 0: wait this long, then let the call through")] = 0.0
    times: Annotated[int | None, Field(ge=1)] = None


@dataclass
class _Active:
    rule: Fault
    hits: int = 0


def call_of(environ: dict) -> tuple[str, str]:
    """(service, action) of an AWS request as botocore signs it."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL.search(auth)
    service = match.group("service") if match else ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action = target.rsplit(".", 1)[-1]
    elif service == "s3":
        has_key = environ.get("PATH_INFO", "/").strip("/").count("/") >= 1
        action = _S3_ACTIONS.get(environ.get("REQUEST_METHOD", ""), "") if has_key else "Bucket"
    else:
        action = ""
    return service, action


def _error_body(service: str, code: str) -> tuple[str, bytes]:
    message = f"injected fault: {code}"
    if service == "s3":
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return "application/xml", body.encode()
    prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else "com.amazonaws.sqs#"
    return "application/x-amz-json-1.0", json.dumps({"__type": prefix + code, "message": message}).encode()


class FaultInjector:
    """WSGI middleware in front of moto's app: the control routes, then the rules, then moto."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self._rules: list[_Active] = []
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # "service:action" -> calls, for the load test's per-request counts

    def set_rules(self, rules: Iterable[Fault]) -> None:
        with self._lock:
            self._rules = [_Active(r) for r in rules]

    def report(self) -> list[dict]:
        with self._lock:
            return [{**asdict(a.rule), "hits": a.hits} for a in self._rules]

    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)

    def _match(self, service: str, action: str) -> Fault | None:
        with self._lock:
            for active in self._rules:
                rule = active.rule
                if rule.service != service or (rule.action and rule.action != action):
                    continue
                if rule.times is not None and active.hits >= rule.times:
                    continue
                active.hits += 1
                return rule
        return None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        service, action = call_of(environ)
        with self._lock:
            self.calls[f"{service}:{action}"] += 1
        rule = self._match(service, action) if service else None
        if rule is not None:
            if rule.delay_s:
                time.sleep(rule.delay_s)
            else:
                content_type, body = _error_body(service, rule.code)
                start_response(
                    f"{rule.status} Injected", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
                )
                return [body]
        return self.app(environ, start_response)

    def _control(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        status = "200 OK"
        if method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                raw = json.loads(environ["wsgi.input"].read(size) or b"{}")
                self.set_rules([Fault(**r) for r in raw.get("rules", [])])
            except (ValueError, TypeError, ValidationError, AttributeError) as exc:
                status, out = "400 Bad Request", {"error": str(exc)}
            else:
                out = {"rules": self.report()}
        elif method == "DELETE":
            self.set_rules([])
            out = {"rules": []}
        else:
            out = {"rules": self.report(), "calls": self.call_counts()}
        body = json.dumps(out).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def inject(endpoint_url: str, faults: Iterable[Fault]) -> list[dict]:
    """Replace the endpoint's fault rules (an empty list clears them); returns the active rules."""
    import urllib.request

    data = json.dumps({"rules": [asdict(f) for f in faults]}).encode()
    req = urllib.request.Request(endpoint_url + CONTROL_PATH, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["rules"]


def endpoint_report(endpoint_url: str) -> dict:
    """``{"rules": the active rules with how often each fired, "calls": {"service:action": calls so far}}``."""
    import urllib.request

    with urllib.request.urlopen(endpoint_url + CONTROL_PATH, timeout=10) as resp:
        return json.loads(resp.read())


def fault_report(endpoint_url: str) -> list[dict]:
    """The active rules with how often each fired."""
    return endpoint_report(endpoint_url)["rules"]


def serve(port: int = 0, ready: Callable[[str], Any] | None = None) -> None:
    """Serve moto behind the fault injector on 127.0.0.1 until killed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import ThreadedWSGIServer

    class Server(ThreadedWSGIServer):
        request_queue_size = LISTEN_BACKLOG
        daemon_threads = True

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_patches.apply_all()  # MotoPatchError, before serving anything, on a moto the speed-ups were not written for
    app = FaultInjector(DomainDispatcherApplication(create_backend_app))
    server = Server("127.0.0.1", port, app, handler=MotoRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    if ready is not None:
        ready(url)
    server.serve_forever()


def _exit_with_parent() -> None:
    """The stack holds this process's stdin open: end of file means it is gone (even killed), so exit too."""
    sys.stdin.read()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin closes (the parent is gone)")
    args = parser.parse_args(argv)
    if args.exit_with_stdin:
        # A process of the local stack: the stack stops it (closing stdin), so a Ctrl-C or a SIGTERM sent to the
        # whole process group leaves it serving the workers' last calls while the stack stops in order.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        threading.Thread(target=_exit_with_parent, daemon=True).start()
    try:
        serve(args.port, ready=lambda url: print(f"READY {url}", flush=True))
    except moto_patches.MotoPatchError as exc:
        print(f"{FAILED}MotoPatchError: {exc}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
