"""The local AWS endpoint: moto's server (SQS, DynamoDB, S3) in its own process, with fault injection.

``python -m infra.local.endpoint [--port N]`` prints ``READY http://127.0.0.1:PORT`` once it serves. Every AWS call
of the local stack (the API handler, the worker processes, the tests) goes through it, so a fault set here reaches
every process: ``POST /_local/faults`` with ``{"rules": [...]}`` replaces the rules, ``GET`` lists them with their
hit counts, ``DELETE`` clears them. A rule matches a service (``dynamodb``, ``sqs``, ``s3``) and optionally an action
(``UpdateItem``, ``SendMessage``, ``GetObject``...) and answers with an AWS-shaped error instead of moto (``status``,
``code``), or first waits ``delay_s`` and then lets the call through; ``times`` limits how often it fires.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import logging
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

CONTROL_PATH = "/_local/faults"
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


def _speed_up_moto() -> Any:
    """moto's server, without two per-call costs that dominate under load (moto 5.2, measured with cProfile).

    * Finding the backend for a request lists moto's package directory (about 145 ``stat`` calls, 1.4 ms a call):
      the answer per host never changes, so it is cached.
    * Each received SQS message re-computes every attribute of its queue (counting its messages) to read the
      retention period: read the one attribute instead.
    * A DynamoDB Query on a table's key, or on a local secondary index (which shares it), sorts every item of the
      table to pick the partition's (3 ms at 500 items, 11 ms at 2,000 in other partitions): take the partition's
      items directly, sorted as before. DynamoDB itself reads only the partition.

    * A DynamoDB TransactWriteItems deep-copies every table it names, once per item, to roll back on failure: the
      cost grows with the table (the load test fell from 15 to 4 requests/s as its tables filled). Back up the
      items it names instead (one transaction at a time), and put back those it wrote if it fails.

    Behaviour is unchanged; the pinned moto version is the one these were measured on.
    """
    import copy

    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.models import SQSBackend

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    def retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
        period = int(self.get_queue(queue_name).message_retention_period)
        return period + message.sent_timestamp / 1000 > time.time()

    SQSBackend.is_message_valid_based_on_retention_period = retained

    every_item, query = Table.all_items, Table.query
    partition: contextvars.ContextVar = contextvars.ContextVar("partition", default=None)  # per request thread

    def all_items(self: Table) -> list:
        only = partition.get()
        if only is None or only[0] is not self:
            return every_item(self)
        if only[1] not in self.items:  # not self.items[...]: a defaultdict would grow an empty partition
            return []
        found = self.items[only[1]]
        return sorted(found.values(), key=lambda x: x.range_key) if self.range_key_attr else [found]

    def keyed_query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        # the table or a local index (same partition key: its items are the partition's); a global one reads all
        by_partition = index_name is None or any(i.name == index_name for i in self.indexes)
        token = partition.set((self, hash_key) if by_partition and hash_key is not None else None)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.reset(token)

    Table.all_items, Table.query = all_items, keyed_query

    items_backed_up: contextvars.ContextVar = contextvars.ContextVar("items_backed_up", default=False)

    class TableCopy:
        """``copy`` as moto's DynamoDB models see it: a table is not copied inside a transaction whose items are
        backed up (moto's rollback then puts back the same table object, and ``transact`` restores the items)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        def deepcopy(self, x: Any, memo: dict | None = None) -> Any:
            return x if isinstance(x, Table) and items_backed_up.get() else copy.deepcopy(x, memo)

    dynamodb_models.copy = TableCopy()  # type: ignore[assignment]
    transact_write_items = DynamoDBBackend.transact_write_items

    def backup(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple]:
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            attrs = op.get("Key") or op["Item"]
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        return saved

    def restore(saved: list[tuple]) -> None:
        for table, hash_key, range_key, item in reversed(saved):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif range_key is None:
                table.items[hash_key] = item
            else:
                table.items[hash_key][range_key] = item

    one_at_a_time = threading.Lock()  # a backup stays true only while no other transaction writes those items

    def transact(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with one_at_a_time:
            try:
                saved = backup(self, transact_items)
            except Exception:  # a malformed call: moto's own path validates it and answers
                return transact_write_items(self, transact_items)
            token = items_backed_up.set(True)
            try:
                return transact_write_items(self, transact_items)
            except TransactionCanceledException as exc:
                # put back only what moto applied (reason "None"); a failed condition or a ConditionCheck wrote nothing
                reasons = json.loads(exc.description)["CancellationReasons"]
                restore(
                    [
                        item
                        for item, reason, entry in zip(saved, reasons, transact_items, strict=True)
                        if reason.get("Code") == "None" and "ConditionCheck" not in entry
                    ]
                )
                raise
            except Exception:  # a validation error part-way: moto applied what came before it
                restore(saved)
                raise
            finally:
                items_backed_up.reset(token)

    DynamoDBBackend.transact_write_items = transact
    return Dispatcher


def serve(port: int = 0, ready: Callable[[str], Any] | None = None) -> None:
    """Serve moto behind the fault injector on 127.0.0.1 until killed."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import ThreadedWSGIServer

    class Server(ThreadedWSGIServer):
        request_queue_size = LISTEN_BACKLOG
        daemon_threads = True

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = FaultInjector(_speed_up_moto()(create_backend_app))
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
        threading.Thread(target=_exit_with_parent, daemon=True).start()
    serve(args.port, ready=lambda url: print(f"READY {url}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
