"""Load test of the local stack: mixed requests from many concurrent clients, with assertions.

``python -m bench.loadtest [--requests 2000] [--concurrency 64] [--workers 1 2 4] [--artifact DIR]`` starts
``python -m infra.local`` once per worker count (loopback only, in its own process, as a user runs it), warms every
worker, then sends ``--requests`` requests (known users, cold starts, similar movies, batches) from
``--concurrency`` client threads, each on one keep-alive connection: POST, then long-poll ``?wait=20`` until the
request is finished. After the run every request is read once more and its table and queues are checked.

It fails (exit 1) on any connection error, a request lost (never finished), one left PENDING, one that reads
differently the second time, anything left in the queue or the DLQ, or, for the default worker count, throughput or
end-to-end p50 outside the bars (``--min-rps``, ``--max-p50-ms``). Writes a table to ``artifacts/loadtest.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from contract import is_artifact
from contract.api import FINISHED
from contract.api import MAX_WAIT_S as WAIT_S
from infra.local.stack import DEFAULT_ARTIFACT

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "loadtest.md"
DEFAULT_WORKERS_RUN = (1, 2, 4)
BAR_WORKERS = 2  # the local stack's default: the bars apply to it
START_S = 180


@dataclass
class Outcome:
    kind: str
    request_id: str = ""
    post_ms: float = 0.0
    e2e_ms: float = 0.0
    status: str = ""
    result: Any = None
    gets: int = 0
    error: str = ""


@dataclass
class RunStats:
    workers: int
    requests: int
    wall_s: float
    outcomes: list[Outcome] = field(default_factory=list)
    connection_errors: int = 0
    lost: int = 0
    pending: int = 0
    mismatched: int = 0
    queue_left: int = 0
    dlq_left: int = 0
    batches: int | None = None
    calls: dict[str, int] = field(default_factory=dict)
    window_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def pct(self, attr: str, q: float) -> float:
        values = sorted(getattr(o, attr) for o in self.outcomes if o.status in FINISHED)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


class Connection:
    """One client's keep-alive HTTP connection; reconnects once after the server closed it."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if api_key:
            self.headers["x-api-key"] = api_key
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=WAIT_S + 30)
            try:
                self._conn.request(method, path, body=data, headers=self.headers)
                resp = self._conn.getresponse()
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
            except (http.client.RemoteDisconnected, BrokenPipeError) as exc:
                # a keep-alive connection the server closed between calls: a fresh one, once (not an error)
                self._conn.close()
                self._conn = None
                if attempt:
                    raise ConnectionError(str(exc)) from exc
        raise AssertionError("unreachable")


def request_mix(model: dict, movies: list[Any], rng: random.Random, n: int) -> list[tuple[str, dict]]:
    """``n`` request bodies: 50% known users, 10% cold starts, 25% similar movies, 15% batches of 5."""
    users = model["example_users"]
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.50:
            out.append(("user", {"user_id": rng.choice(users), "k": 10, "include_history": rng.random() < 0.3}))
        elif roll < 0.60:
            rated = rng.sample(movies, 5)
            out.append(("cold_start", {"ratings": {str(m): rng.choice([3, 4, 4.5, 5]) for m in rated}, "k": 10}))
        elif roll < 0.85:
            out.append(("similar", {"similar_to": rng.choice(movies), "k": 10}))
        else:
            out.append(("batch", {"user_ids": rng.sample(users, min(5, len(users))), "k": 5}))
    return out


def one_request(conn: Connection, kind: str, body: dict) -> Outcome:
    outcome = Outcome(kind)
    t0 = time.perf_counter()
    status, doc = conn.call("POST", "/recommendations", body)
    outcome.post_ms = (time.perf_counter() - t0) * 1000
    if status != 202:
        outcome.error = f"POST {status}: {doc}"
        return outcome
    outcome.request_id = doc["request_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, doc = conn.call("GET", f"/recommendations/{outcome.request_id}?wait={WAIT_S}")
        outcome.gets += 1
        if status != 200:
            outcome.error = f"GET {status}: {doc}"
            return outcome
        if doc["status"] in FINISHED:
            outcome.e2e_ms = (time.perf_counter() - t0) * 1000
            outcome.status, outcome.result = doc["status"], doc.get("result") or doc.get("error")
            return outcome
    outcome.status = "PENDING"
    return outcome


def drive(url: str, api_key: str | None, bodies: list[tuple[str, dict]], concurrency: int, label: str) -> tuple:
    """Send every body from ``concurrency`` threads; (outcomes, connection errors, wall seconds)."""
    todo: queue.Queue[tuple[str, dict]] = queue.Queue()
    for item in bodies:
        todo.put(item)
    outcomes: list[Outcome] = []
    errors: list[str] = []
    lock = threading.Lock()
    bar = tqdm(total=len(bodies), desc=label, unit="req", leave=False, file=sys.stderr, mininterval=2)

    def client() -> None:
        conn = Connection(url, api_key)
        while True:
            try:
                kind, body = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = one_request(conn, kind, body)
            except (OSError, http.client.HTTPException) as exc:
                outcome = Outcome(kind, error=f"connection: {type(exc).__name__}: {exc}")
                with lock:
                    errors.append(outcome.error)
                conn = Connection(url, api_key)
            with lock:
                outcomes.append(outcome)
            bar.update()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    bar.close()
    return outcomes, errors, wall


class LocalStackProcess:
    """``python -m infra.local`` in its own process; its URL and key from its first lines."""

    def __init__(
        self, artifact: Path, workers: int, window_s: float = 0.0, log: Path | None = None, throttle: bool = False
    ) -> None:
        """``throttle``: hold calls to the deployed usage plans (off for the load test, which measures the stack's
        own capacity, above an operator key's 50 requests/s; on for the flood, bench.flood)."""
        cmd = [sys.executable, "-m", "infra.local", "--port", "0", "--artifact", str(artifact)]
        cmd += ["--workers", str(workers), "--batching-window", str(window_s), "--quiet"]
        cmd += [] if throttle else ["--no-throttle"]
        env = {"POWERTOOLS_LOG_LEVEL": "WARNING"}
        self.log = log.open("a") if log else None
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=self.log or subprocess.DEVNULL,
            text=True,
        )
        self.url = self.api_key = ""
        self.endpoint = self.dynamodb_endpoint = ""
        deadline = time.monotonic() + START_S
        for line in self.proc.stdout:
            if line.startswith("API URL: "):
                self.url = line.split(": ", 1)[1].strip()
            elif line.startswith("API key: "):
                self.api_key = line.split()[2]
            elif "AWS endpoints (moto): " in line:
                urls = [w.rstrip(",") for w in line.split() if w.startswith("http://")]
                self.dynamodb_endpoint, self.endpoint = urls[0], urls[1]
            elif line.startswith("Web page:"):
                break
            if time.monotonic() > deadline:
                break
        if not self.url:
            self.stop()
            raise RuntimeError(f"python -m infra.local did not start (exit {self.proc.poll()})")

        def drain() -> None:  # the handlers' warnings and errors (JSON lines) go to the log, if any
            for line in self.proc.stdout:
                if self.log:
                    self.log.write(line)

        threading.Thread(target=drain, daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def queue_depths(endpoint_url: str) -> tuple[int, int]:
    """Messages (visible + in flight) in the request queue and in the DLQ of the local endpoint's only stack."""
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    depths = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        depths[url] = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    main = sum(v for k, v in depths.items() if not k.endswith("-dlq"))
    dead = sum(v for k, v in depths.items() if k.endswith("-dlq"))
    return main, dead


def all_calls(stack: LocalStackProcess) -> dict[str, int]:
    """AWS calls so far at the stack's endpoints, by ``service:action``."""
    from infra.local.endpoint import endpoint_report

    calls: dict[str, int] = {}
    for url in (stack.endpoint, stack.dynamodb_endpoint):
        for key, n in endpoint_report(url)["calls"].items():
            calls[key] = calls.get(key, 0) + n
    return calls


def served_model(stack: LocalStackProcess) -> tuple[Connection, dict, list[Any]]:
    """An operator's connection to ``stack``, its model card and the ids of its 50 most popular movies."""
    conn = Connection(stack.url, stack.api_key)
    _, model = conn.call("GET", "/model")
    _, page = conn.call("GET", "/movies?limit=50")
    return conn, model, [m["movie_id"] for m in page["movies"]]


def run_one(
    artifact: Path, workers: int, n: int, concurrency: int, seed: int, window_s: float = 0.0, log: Path | None = None
) -> RunStats:
    stack = LocalStackProcess(artifact, workers, window_s, log)
    try:
        conn, model, movies = served_model(stack)
        rng = random.Random(seed)
        # warm-up: enough requests at once that every worker process loads the model (its cold start)
        warm, warm_errors, _ = drive(
            stack.url, stack.api_key, request_mix(model, movies, rng, 8 * workers), 4 * workers, "warm-up"
        )
        if warm_errors or any(o.status != "COMPLETED" for o in warm):
            raise RuntimeError(f"warm-up failed: {warm_errors[:3]} {[o.error for o in warm if o.error][:3]}")
        calls_before = all_calls(stack) if stack.endpoint else {}
        bodies = request_mix(model, movies, rng, n)
        outcomes, errors, wall = drive(stack.url, stack.api_key, bodies, concurrency, f"{workers} workers")
        stats = RunStats(workers, n, wall, outcomes, connection_errors=len(errors), window_s=window_s)
        stats.lost = sum(1 for o in outcomes if not o.status and not o.error.startswith("connection"))
        stats.pending = sum(1 for o in outcomes if o.status == "PENDING")
        # read every finished request again: the same answer (no request answered twice differently)
        for o in outcomes:
            if o.status in FINISHED:
                status, doc = conn.call("GET", f"/recommendations/{o.request_id}")
                again = doc.get("result") or doc.get("error") if status == 200 else None
                stats.mismatched += status != 200 or doc["status"] != o.status or again != o.result
        if stack.endpoint:
            stats.queue_left, stats.dlq_left = queue_depths(stack.endpoint)
            calls = all_calls(stack)
            stats.calls = {k: v - calls_before.get(k, 0) for k, v in calls.items()}
        return stats
    finally:
        stack.stop()


def render(runs: list[RunStats], concurrency: int, cmd: str) -> str:
    lines = [
        f"Load test of the local stack: `{cmd}` ({time.strftime('%Y-%m-%d')}, this machine).",
        f"Each run: {runs[0].requests} requests (50% known users, 10% cold starts, 25% similar movies, 15% batches "
        f"of 5) from {concurrency} concurrent clients, POST then long-poll `?wait={WAIT_S}`; end to end is POST "
        "sent to the finished status received.",
        "",
        "| worker processes | batching window (s) | throughput (req/s) | POST p50 / p99 (ms) "
        "| end to end p50 / p99 (ms) | GETs per request | worker invocations per request | connection errors | lost "
        "| left PENDING | read twice, differing | queue / DLQ left |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        gets = statistics.mean(o.gets for o in r.outcomes if o.status in FINISHED) if r.outcomes else 0
        invocations = r.calls.get("sqs:DeleteMessageBatch", 0) / r.requests
        lines.append(
            f"| {r.workers} | {r.window_s:g} | {r.rps:.0f} "
            f"| {r.pct('post_ms', 0.5):.0f} / {r.pct('post_ms', 0.99):.0f} "
            f"| {r.pct('e2e_ms', 0.5):.0f} / {r.pct('e2e_ms', 0.99):.0f} | {gets:.2f} | {invocations:.2f} "
            f"| {r.connection_errors} | {r.lost} | {r.pending} | {r.mismatched} | {r.queue_left} / {r.dlq_left} |"
        )
    lines += ["", "AWS calls per request during the run (at the local endpoint):", ""]
    lines += ["| worker processes | window (s) | " + " | ".join(CALLS) + " | all |"]
    lines += ["|---|---|" + "---|" * (len(CALLS) + 1)]
    for r in runs:
        per = {k: v / r.requests for k, v in r.calls.items()}
        cells = [f"{per.get(k, 0):.2f}" for k in CALLS]
        lines.append(f"| {r.workers} | {r.window_s:g} | " + " | ".join(cells) + f" | {sum(per.values()):.2f} |")
    return "\n".join(lines) + "\n"


CALLS = (
    "dynamodb:PutItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:BatchWriteItem",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "sqs:DeleteMessageBatch",
)


def check(runs: list[RunStats], min_rps: float, max_p50_ms: float) -> list[str]:
    problems = []
    for r in runs:
        failed = sum(1 for o in r.outcomes if o.status == "FAILED")
        for name, value in (
            ("connection errors", r.connection_errors),
            ("lost requests", r.lost),
            ("requests left PENDING", r.pending),
            ("requests reading differently twice", r.mismatched),
            ("messages left in the queue", r.queue_left),
            ("messages in the DLQ", r.dlq_left),
            ("FAILED requests", failed),
            ("HTTP errors", sum(1 for o in r.outcomes if o.error and not o.error.startswith("connection"))),
        ):
            if value:
                problems.append(f"{r.workers} workers, window {r.window_s:g} s: {value} {name}")
        problems += [f"  e.g. {o.kind}: {o.error[:300]}" for o in r.outcomes if o.error][:3]
        if r.workers == BAR_WORKERS and r.window_s == 0:
            if r.rps < min_rps:
                problems.append(f"{r.workers} workers: {r.rps:.0f} requests/s, under {min_rps:g}")
            if r.pct("e2e_ms", 0.5) > max_p50_ms:
                problems.append(
                    f"{r.workers} workers: end-to-end p50 {r.pct('e2e_ms', 0.5):.0f} ms over {max_p50_ms:g}"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=list(DEFAULT_WORKERS_RUN))
    parser.add_argument("--min-rps", type=float, default=66.0, help=f"bar for {BAR_WORKERS} workers")
    parser.add_argument("--max-p50-ms", type=float, default=400.0, help=f"bar for {BAR_WORKERS} workers")
    parser.add_argument(
        "--batching-windows", type=float, nargs="+", default=[0.0], help="worker batching windows to run (seconds)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stack-log", type=Path, help="append the local stack's warnings and errors to this file")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not is_artifact(args.artifact):
        print(f"error: no artifact at {args.artifact}: run `make export` first", file=sys.stderr)
        return 2
    runs = []
    for window in args.batching_windows:
        for workers in args.workers:
            runs.append(
                run_one(args.artifact, workers, args.requests, args.concurrency, args.seed, window, args.stack_log)
            )
            print(render(runs[-1:], args.concurrency, "").splitlines()[5], flush=True)  # the run's row
    cmd = "python -m bench.loadtest " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(runs, args.concurrency, cmd.strip())
    problems = check(runs, args.min_rps, args.max_p50_ms)
    text += "\n" + (
        "All checks passed.\n" if not problems else "Checks FAILED:\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
