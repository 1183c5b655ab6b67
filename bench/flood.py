"""An anonymous flood through the web page's path while an operator works: are the usage plans holding?

``python -m bench.flood [--seconds 30] [--flood-rps 60] [--operator-rps 4] [--artifact DIR]`` starts the local
stack with the deployed stack's throttles (the page's usage plan 20 requests/s, burst 40; an operator key's 50/s,
burst 100; the stage's 50/s), then runs two phases of ``--seconds`` each:

1. an operator alone: ``--operator-rps`` recommendation requests a second (the load test's mix), each POSTed and
   long-polled to its end, with the operator's key;
2. the same operator load while anonymous clients send ``--flood-rps`` calls a second (3 x the page's limit by
   default) through ``/api/``, as anyone can from a browser: half title searches, half similar-movie requests;
3. for contrast, phase 2 again on a fresh stack without the usage plans (``--no-unthrottled`` skips it): what the
   plans prevent.

It reports, per phase, the operator's requests finished, refused and failed and their end-to-end latency, and the
flood's calls served and refused (429 ``throttled``), and fails (exit 1) when an operator's call is refused or fails,
when no flood call is refused, or when more flood calls are served than the page's plan allows (its burst plus its
rate over the phase, 5% slack for the clock). Writes ``artifacts/flood.md``. Throughput is bounded here by moto
(each AWS call costs it 2-4 ms of CPU), not by Lambda: the served flood's work slows the operator's requests down
on this machine, which deployed Lambda's scaling would not.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bench.loadtest import Connection, LocalStackProcess, Outcome, one_request, request_mix, served_model
from contract import is_artifact
from infra.local.stack import DEFAULT_ARTIFACT, DEPLOYED_LIMITS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "flood.md"
FLOOD_THREADS = 8
WORDS = ("toy", "star", "love", "man", "night", "war", "the", "day", "life", "king")


@dataclass
class Phase:
    name: str
    seconds: float
    throttled: bool = True
    operator: list[Outcome] = field(default_factory=list)
    flood_status: dict[int, int] = field(default_factory=dict)

    @property
    def flood_sent(self) -> int:
        return sum(self.flood_status.values())

    @property
    def flood_served(self) -> int:
        return sum(n for status, n in self.flood_status.items() if 200 <= status < 300)

    @property
    def flood_throttled(self) -> int:
        return self.flood_status.get(429, 0)

    def operator_pct(self, q: float) -> float:
        values = sorted(o.e2e_ms for o in self.operator if o.status == "COMPLETED")
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def paced(rate: float, seconds: float, start: float, offset: float = 0.0) -> Iterator[float]:
    """Send times at ``rate`` a second from ``start`` for ``seconds`` (``offset``: this thread's phase)."""
    i = 0
    while (t := start + offset + i / rate) < start + seconds:
        yield t
        i += 1


def operator_load(url: str, key: str, bodies: list, rate: float, seconds: float, out: list[Outcome]) -> None:
    """``rate`` requests a second, each on a thread of its own so that a slow one never delays the next."""
    threads = []
    start = time.monotonic()
    for when, (kind, body) in zip(paced(rate, seconds, start), bodies, strict=False):
        time.sleep(max(0.0, when - time.monotonic()))

        def one(kind: str = kind, body: dict = body) -> None:
            try:
                out.append(one_request(Connection(url, key), kind, body))
            except OSError as exc:
                out.append(Outcome(kind, error=f"connection: {exc}"))

        thread = threading.Thread(target=one, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


def flood(url: str, movies: list, rate: float, seconds: float, status: dict[int, int], seed: int) -> None:
    """Anonymous calls through /api/ at ``rate`` a second from FLOOD_THREADS keep-alive connections."""
    lock = threading.Lock()
    start = time.monotonic()
    bar = tqdm(total=int(rate * seconds), desc="flood", unit="call", leave=False, file=sys.stderr, mininterval=2)

    def client(i: int) -> None:
        rng = random.Random(seed + i)
        conn = Connection(url, None)
        for when in paced(rate / FLOOD_THREADS, seconds, start, offset=i / rate):
            time.sleep(max(0.0, when - time.monotonic()))
            try:
                if rng.random() < 0.5:
                    code, _ = conn.call("GET", f"/api/movies?q={rng.choice(WORDS)}&limit=10")
                else:
                    code, _ = conn.call("POST", "/api/recommendations", {"similar_to": rng.choice(movies), "k": 10})
            except OSError:
                code, conn = 0, Connection(url, None)
            with lock:
                status[code] = status.get(code, 0) + 1
            bar.update()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()


def run(
    artifact: Path, seconds: float, flood_rps: float, operator_rps: float, seed: int, throttle: bool = True
) -> list[Phase]:
    """The two phases on a fresh local stack (``throttle``: with the deployed usage plans; without, for contrast,
    only the flooded phase)."""
    stack = LocalStackProcess(artifact, workers=2, throttle=throttle)
    try:
        _, model, movies = served_model(stack)
        rng = random.Random(seed)
        n = int(operator_rps * seconds) + 1
        # warm-up: every worker loads the model (its cold start), outside both phases
        warm: list[Outcome] = []
        operator_load(stack.url, stack.api_key, request_mix(model, movies, rng, 8), 4, 2, warm)
        time.sleep(DEPLOYED_LIMITS.operator_burst / DEPLOYED_LIMITS.operator_rate)  # the buckets full again
        phases = []
        if throttle:
            alone = Phase("operator alone", seconds)
            operator_load(
                stack.url, stack.api_key, request_mix(model, movies, rng, n), operator_rps, seconds, alone.operator
            )
            phases.append(alone)
            time.sleep(DEPLOYED_LIMITS.operator_burst / DEPLOYED_LIMITS.operator_rate)
        name = f"operator + anonymous flood at {flood_rps:g}/s" + ("" if throttle else ", **no usage plans**")
        flooded = Phase(name, seconds, throttled=throttle)
        flooder = threading.Thread(
            target=flood, args=(stack.url, movies, flood_rps, seconds, flooded.flood_status, seed), daemon=True
        )
        flooder.start()
        operator_load(
            stack.url, stack.api_key, request_mix(model, movies, rng, n), operator_rps, seconds, flooded.operator
        )
        flooder.join()
        phases.append(flooded)
        return phases
    finally:
        stack.stop()


def render(phases: list[Phase], cmd: str, flood_rps: float, operator_rps: float) -> str:
    limits = DEPLOYED_LIMITS
    lines = [
        f"Anonymous flood on the local stack: `{cmd}` ({time.strftime('%Y-%m-%d')}, this machine). Throttles as "
        f"deployed: the page's usage plan {limits.page_rate:g}/s (burst {limits.page_burst}), an operator key's and "
        f"the stage's {limits.operator_rate:g}/s (burst {limits.operator_burst}). The operator sends "
        f"{operator_rps:g} recommendation requests a second (POST, then long-poll to the end).",
        "",
        "| phase | seconds | operator requests | finished | refused (429) | failed | end to end p50 / p95 (ms) "
        "| flood calls sent (/s) | flood served (/s) | flood refused 429 | other |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        done = sum(1 for o in p.operator if o.status == "COMPLETED")
        refused = sum(1 for o in p.operator if " 429" in o.error)
        failed = len(p.operator) - done - refused
        other = p.flood_sent - p.flood_served - p.flood_throttled
        flood = (
            f"{p.flood_sent} ({p.flood_sent / p.seconds:.1f}) | {p.flood_served} ({p.flood_served / p.seconds:.1f}) "
            f"| {p.flood_throttled} ({p.flood_throttled / max(1, p.flood_sent):.0%}) | {other}"
            if p.flood_sent
            else "- | - | - | -"
        )
        lines.append(
            f"| {p.name} | {p.seconds:g} | {len(p.operator)} | {done} | {refused} | {failed} "
            f"| {p.operator_pct(0.5):.0f} / {p.operator_pct(0.95):.0f} | {flood} |"
        )
    return "\n".join(lines) + "\n"


def check(phases: list[Phase]) -> list[str]:
    problems = []
    limits = DEPLOYED_LIMITS
    for p in phases:
        if not p.throttled:
            continue  # for contrast only
        bad = [o for o in p.operator if o.status != "COMPLETED"]
        if bad:
            problems.append(f"{p.name}: {len(bad)} operator requests not served, e.g. {bad[0].error[:200]}")
    flooded = [p for p in phases if p.flood_sent and p.throttled][-1]
    if not flooded.flood_throttled:
        problems.append("no flood call was refused: the page's usage plan held nothing")
    allowed = limits.page_burst + limits.page_rate * flooded.seconds * 1.05
    if flooded.flood_served > allowed:
        problems.append(f"{flooded.flood_served} flood calls served, over the plan's {allowed:.0f}")
    other = flooded.flood_sent - flooded.flood_served - flooded.flood_throttled
    if other:
        problems.append(f"{other} flood calls answered neither 2xx nor 429: {flooded.flood_status}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--flood-rps", type=float, default=3 * DEPLOYED_LIMITS.page_rate)
    parser.add_argument("--operator-rps", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-unthrottled", dest="unthrottled", action="store_false", help="skip the run without usage plans"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not is_artifact(args.artifact):
        print(f"error: no artifact at {args.artifact}: run `make export` first", file=sys.stderr)
        return 2
    phases = run(args.artifact, args.seconds, args.flood_rps, args.operator_rps, args.seed)
    if args.unthrottled:  # the same flood without the plans: what they prevent
        phases += run(args.artifact, args.seconds, args.flood_rps, args.operator_rps, args.seed, throttle=False)
    cmd = ("python -m bench.flood " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    text = render(phases, cmd, args.flood_rps, args.operator_rps)
    problems = check(phases)
    text += "\n" + (
        "All checks passed.\n" if not problems else "Checks FAILED:\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
