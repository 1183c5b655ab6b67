"""The cost model's markdown: each table, and the report ``python -m infra.costs`` prints (headings and tables).

``sections`` gives the report's parts in order, each a heading and its paragraphs and table, so that the docs page
(``infra.costs.page``) can put its prose between them; ``report`` joins them under ``###`` headings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from infra.costs.assumptions import CONFIG, MILLION, MILLION_PER_MONTH_RPS, SECONDS_PER_MONTH, Assumptions
from infra.costs.bill import cost_per_million, cost_per_million_events, total
from infra.costs.capacity import concurrency_for, setting_for, worker_rps
from infra.costs.flow import flow
from infra.costs.latency import cold_start_hops, latency_budget
from infra.costs.personalize import personalize_cost
from infra.costs.prices import READ_ON, SOURCES

RATES = (100, 1000)  # the sustained rates of tables (b) and (c) unless the CLI's --rates says otherwise
WINDOW_RATES = (MILLION_PER_MONTH_RPS, 1, 10, 100, 1000)  # table (d): rates, and the windows at each
WINDOWS = (0, 1, 5)


def usd(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.2f}" if x >= 1 else f"{x:.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cost_table(a: Assumptions) -> str:
    rows = [(line.hop, line.quantity, usd(line.usd)) for line in cost_per_million(a)]
    rows[-1] = ("**Total**", "", f"**{usd(cost_per_million(a)[-1].usd)}**")
    return table(("hop", "per request (or counted)", "USD per 1M requests"), rows)


def _events_table(a: Assumptions) -> str:
    lines = cost_per_million_events(a)
    rows = [(line.hop, line.quantity, usd(line.usd)) for line in lines]
    rows[-1] = ("**Total**", "", f"**{usd(lines[-1].usd)}**")
    return table(("hop", "per event (or counted)", "USD per 1M events"), rows)


def _retraining_tables() -> tuple[str, ...]:
    from infra.costs.retraining import SHAPES, personalize_week, week

    blocks = []
    for shape in SHAPES:
        lines = week(shape)
        rows = [(line.hop, line.quantity, usd(line.usd)) for line in lines]
        rows[-1] = ("**Total, this stack**", "", f"**{usd(lines[-1].usd)}**")
        rows.append(
            (
                "Amazon Personalize: one training of the same data",
                f"{shape.personalize_training_hours:,.1f} training hours",
                usd(personalize_week(shape)),
            )
        )
        blocks += [f"**{shape.name}**, one run a week:", table(("what", "counted", "USD per week"), rows)]
    return tuple(blocks)


def _sustained_table(a: Assumptions, rates: Sequence[float]) -> str:
    rows = []
    for r in rates:
        ar = replace(a, rate_rps=r)
        f = flow(ar)
        b = f.batching
        worker_busy = concurrency_for(r, ar.worker_per_request_ms, b.mean_batch, ar.worker_invocation_ms)
        api_busy = concurrency_for(r, ar.api_post_ms) + concurrency_for(r * f.gets, f.get_billed_ms)
        month_m = r * SECONDS_PER_MONTH / MILLION
        month_usd = total(ar, first_tier=False) * month_m
        rows.append(
            (
                f"{r:,.0f}",
                f"{month_m:,.0f} M",
                f"{b.mean_batch:.2f}",
                f"{worker_busy:.1f} -> **{setting_for(worker_busy)}**",
                f"{api_busy:.1f}",
                usd(month_usd),
                usd(month_usd / month_m),
            )
        )
    return table(
        (
            "requests/s",
            "requests a month",
            "batch",
            "worker environments busy (Little) -> max_concurrency",
            "API environments busy",
            "USD a month",
            "USD per 1M",
        ),
        rows,
    )


def _scenario_table(a: Assumptions) -> str:
    """The same million requests under the window and status-read choices (everything else as in ``a``)."""
    rows = []
    for label, window, long_poll, tracing in (
        ("window 1 s, short polling (before)", 1.0, False, a.tracing),
        ("window 0, short polling", 0.0, False, a.tracing),
        ("window 1 s, long-poll", 1.0, True, a.tracing),
        ("window 0, long-poll (as deployed)", 0.0, True, a.tracing),
        ("window 0, long-poll, X-Ray off", 0.0, True, False),
    ):
        s = replace(a, batching_window_s=window, long_poll=long_poll, tracing=tracing)
        lines, f = cost_per_million(s), flow(s)
        by = {line.hop.split(" (")[0].split(":")[0]: 0.0 for line in lines}
        for line in lines:
            by[line.hop.split(" (")[0].split(":")[0]] += line.usd
        rows.append(
            (
                label,
                f"{f.batching.invocations_per_request:.2f}",
                f"{f.gets:.2f}",
                f"{1 + f.gets * f.reads_per_get:.2f}",
                f"{latency_budget(s)[-1].ms:.0f}",
                usd(by["API Gateway REST"]),
                usd(by["API function"]),
                usd(by.get("X-Ray traces", 0.0)),
                f"**{usd(lines[-1].usd)}**",
            )
        )
    return table(
        (
            "choice",
            "worker invocations per request",
            "GETs per request",
            "table reads per request",
            "end-to-end ms (warm)",
            "API Gateway USD",
            "API function USD",
            "X-Ray USD",
            "total USD per 1M",
        ),
        rows,
    )


def _personalize_table(a: Assumptions, rates: Sequence[float]) -> str:
    rows = []
    for label, r in (("1M requests spread over a month", MILLION_PER_MONTH_RPS), *((f"{x:,.0f}/s", x) for x in rates)):
        p = personalize_cost(r)
        ours = total(replace(a, rate_rps=r), first_tier=False) * r * SECONDS_PER_MONTH / MILLION
        rows.append(
            (
                label,
                f"{p['tps_hours']:,.0f}",
                usd(p["inference"]),
                usd(p["training"] + p["ingestion"]),
                usd(p["total"]),
                usd(p["per_million"]),
                usd(ours),
            )
        )
    return table(
        (
            "traffic",
            "TPS-hours",
            "inference USD",
            "training + ingestion USD",
            "Personalize USD a month",
            "USD per 1M",
            "this stack USD a month",
        ),
        rows,
    )


def _window_table(a: Assumptions, rates: Sequence[float], windows: Sequence[float]) -> str:
    rows = []
    for r in rates:
        for w in windows:
            aw = replace(a, rate_rps=r, batching_window_s=w)
            f = flow(aw)
            b = f.batching
            budget = latency_budget(aw)[-1].ms
            rows.append(
                (
                    f"{r:,.2f}",
                    f"{w:g} s",
                    f"{b.mean_batch:.2f}",
                    f"{b.invocations_per_request:.2f}",
                    f"{b.mean_added_s * 1000:.0f} / {b.max_added_s * 1000:.0f}",
                    f"{f.gets:.2f}",
                    f"{budget:.0f}",
                    usd(total(aw)),
                )
            )
    return table(
        (
            "requests/s",
            "window",
            "batch",
            "worker invocations per request",
            "added wait mean / max ms",
            "GETs per request",
            "end-to-end ms (warm)",
            "USD per 1M",
        ),
        rows,
    )


def _guard_table() -> str:
    from infra.costs.guard import SCENARIOS, month

    months = [month(usage) for _, usage in SCENARIOS]
    rows = []
    for i, line in enumerate(months[0]):
        cells = [usd(m[i].usd) for m in months]
        if line.hop == "Total":
            rows.append(("**Total**", "", *(f"**{c}**" for c in cells)))
        else:
            rows.append((line.hop, " / ".join(m[i].quantity for m in months), *cells))
    return table(("what", "counted", *(f"USD, {name}" for name, _ in SCENARIOS)), rows)


def _latency_table(a: Assumptions) -> str:
    rows = [(h.hop, f"{h.ms:.0f}", h.source) for h in latency_budget(a)]
    rows[-1] = (f"**{rows[-1][0]}**", f"**{rows[-1][1]}**", "")
    return table(("hop", "ms (mean)", "source"), rows)


def _sources_table() -> str:
    rows = [(s.item, s.value, s.where, "yes" if s.verified else "**no**", s.note) for s in SOURCES]
    return table(("price (us-east-1, USD)", "value", f"source (read {READ_ON})", "number in an AWS text", "note"), rows)


@dataclass(frozen=True)
class Section:
    """One part of the report: its key (``a``, ``a2`` ... ``f``, ``sources``), heading, and blocks (paragraphs,
    the table) in order."""

    key: str
    heading: str
    blocks: tuple[str, ...]


def assumptions_line(a: Assumptions) -> str:
    """The one paragraph that opens the report: what the tables assume."""
    mode = f"long-poll (GET ?wait={a.long_poll_wait_s:g})" if a.long_poll else "short polling (the web page's schedule)"
    return (
        f"Assumptions: {a.architecture}; API function {a.api_memory_mb} MB, POST {a.api_post_ms:g} ms, GET"
        f" {a.api_get_ms:g} ms; worker {a.worker_memory_mb} MB, {a.worker_per_request_ms:.2f} ms per message"
        f" + {a.worker_invocation_ms:g} ms per invocation; batch size {a.batch_size}, window"
        f" {a.batching_window_s:g} s; status: {mode}; items {a.pending_item_kb:g} KB PENDING,"
        f" {a.completed_item_kb:g} KB COMPLETED; us-east-1 list prices, no free tier."
    )


def sections(a: Assumptions, rates: Sequence[float] = RATES) -> list[Section]:
    """Every table of the report, in order, with its heading (and, for (b), the paragraph before it)."""
    f = flow(a)
    per_worker = worker_rps(a.worker_per_request_ms, a.batch_size, a.worker_invocation_ms)
    engine_only = worker_rps(a.worker_engine_ms)
    sustained = (
        f"One busy worker environment sustains {per_worker:,.0f} requests/s with full batches of"
        f" {a.batch_size} ({engine_only:,.0f}/s on the engine's {a.worker_engine_ms:g} ms per request alone,"
        " without the DynamoDB calls)."
        f" The stack's max_concurrency is {CONFIG.max_concurrency}; its API stage throttle,"
        f" {CONFIG.throttle_rate:g} calls/s (burst {CONFIG.throttle_burst}), caps the whole API at"
        f" {CONFIG.throttle_rate / (1 + f.gets):.0f} recommendation requests/s with {1 + f.gets:.2f} calls each."
    )
    cold = table(("what", "ms (or count)", "source"), [(h.hop, f"{h.ms:.0f}", h.source) for h in cold_start_hops(a)])
    return [
        Section(
            "a", f"(a) One million requests at {a.rate_rps:.2f} requests/s (1M spread over a month)", (_cost_table(a),)
        ),
        Section("a2", "(a2) The same million under the batching-window and status-read choices", (_scenario_table(a),)),
        Section(
            "a3",
            f"(a3) One million stored events (`POST /events`, {a.events_per_post:g} per call)",
            (_events_table(a),),
        ),
        Section("b", "(b) Sustained load", (sustained, _sustained_table(a, rates))),
        Section("c", "(c) Amazon Personalize for the same traffic", (_personalize_table(a, rates),)),
        Section(
            "d", "(d) Batching window: invocations against latency (model)", (_window_table(a, WINDOW_RATES, WINDOWS),)
        ),
        Section("e", "(e) Latency budget of one request (warm)", (_latency_table(a),)),
        Section(
            "g",
            "(g) The retraining loop, per week",
            (
                "One scheduled run a week (docs/retraining.md) with a year of events kept in the table, at two data"
                " shapes; SageMaker's time is measured here and taken as the instance's (infra/costs/retraining.py"
                " says how); Personalize's training charge is for its default weekly retraining of the same data"
                " (the ml-25m figure is a linear extrapolation: AWS publishes none).",
                *_retraining_tables(),
            ),
        ),
        Section(
            "h",
            "(h) Accounts and abuse bounds, per month",
            (
                "The web ACLs bill whether or not anything comes (and a refused flood's requests too), the user pool"
                " per person active in the month (infra/costs/guard.py). At a hundred thousand people a month the"
                " user pool is most of it (Essentials, the plan the stack sets; its per-person price is not verified"
                " here, see the sources):",
                _guard_table(),
            ),
        ),
        Section("f", "(f) A cold start (not in the warm total)", (cold,)),
        Section("sources", "Price sources", (_sources_table(),)),
    ]


def report(a: Assumptions, rates: Sequence[float] = RATES) -> str:
    """All the tables, as markdown."""
    blocks = [assumptions_line(a)]
    for section in sections(a, rates):
        blocks += [f"### {section.heading}", *section.blocks]
    return "\n\n".join(blocks)
