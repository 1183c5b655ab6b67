"""The documentation's cost page (``docs/costs.md``): the report's tables with the prose that reads them.

Every figure in the prose is computed here from the same model as the tables, so the page cannot contradict itself;
what the model cannot compute (the dates of the benchmarks, the commands, the sections of the rest of the
documentation) is written once, here. ``python -m infra.costs --page docs/costs.md`` writes the page, and
``tests/infra/test_costs_page.py`` fails when the committed one differs from what this module renders.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from itertools import accumulate

from infra.costs.assumptions import (
    CONFIG,
    ENGINE_MEASURED_ON,
    MILLION,
    MILLION_PER_MONTH_RPS,
    SECONDS_PER_MONTH,
    Assumptions,
)
from infra.costs.bill import cost_per_million, cost_per_million_events, total
from infra.costs.capacity import concurrency_for, setting_for, worker_rps
from infra.costs.flow import batching_for, flow
from infra.costs.personalize import personalize_cost
from infra.costs.report import RATES, assumptions_line, sections, usd

PAGE_PATH = "docs/costs.md"
PAGE_COMMAND = f"python -m infra.costs --page {PAGE_PATH}"
WIDTH = 120

# The lines of table (a) that the observability total is made of; the rest is the request path.
OBSERVABILITY = ("CloudWatch Logs", "X-Ray")
# The lines a batching window makes cheaper by gathering messages: the worker's invocations and their event source.
INVOCATION_LINES = ("SQS: event source", "Worker function: requests", "Worker function: duration", "Lambda INIT")


def _line(a: Assumptions, hop: str) -> float:
    return sum(line.usd for line in cost_per_million(a)[:-1] if line.hop.startswith(hop))


def _wrap(text: str, first: str = "", rest: str = "") -> str:
    """A paragraph (or a list item) wrapped at the repository's 120 columns, code spans and links unbroken."""
    return textwrap.fill(
        text, WIDTH, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )


def _ms_list(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values[:-1]) + f" and {values[-1]:,.0f}"


def intro(a: Assumptions) -> str:
    """What the model is, where its durations come from, and what one request is made of."""
    reads = list(accumulate(a.long_poll_delays_ms[:-1], initial=0.0))
    return _wrap(
        "`python -m infra.costs` (`infra/costs/`; `--help` lists the overrides) prices the deployed flow hop by hop"
        " at us-east-1 list prices (no free tiers, savings plans or taxes). It is a model, not a bill: nothing here"
        " was measured in AWS. Durations are our benchmarks where we have them (the engine's"
        f" {a.worker_engine_ms:g} ms per user request, `make bench` {ENGINE_MEASURED_ON}'s last run; item and message"
        " sizes measured with the served artifact) and labelled assumptions where we do not (the API function's"
        f" {a.api_post_ms:g} ms per POST and {a.api_get_ms:g} ms per GET, the worker's {a.worker_io_ms:g} ms for its"
        " three DynamoDB calls per message); every one is a field of `Assumptions` (`infra/costs/assumptions.py`)."
        " A request costs: POST = API Gateway + the API function + the one `TransactWriteItems` of the conditional"
        " PENDING item and the user's request pointer in the events table (2 WRU each, a transaction's price; see"
        " [Events](api.md#events)) + one `SendMessage`; the worker = its share of an invocation, one consistent"
        " `GetItem`, one consistent `Query` of the user's events (1 RRU) and one conditional `UpdateItem` (2 WRU for"
        " a k=10 result); the long-poll GET = API Gateway + one API function invocation that re-reads the item on the"
        f" long-poll schedule (at {_ms_list(reads)} ms, then every {a.long_poll_delays_ms[-1]:g} ms)."
    )


def after_events(a: Assumptions) -> str:
    """What table (a3) says."""
    lines = {line.hop: line.usd for line in cost_per_million_events(a)}
    writes = lines["DynamoDB writes (one transaction per call)"]
    return _wrap(
        f"A stored event costs about USD {round(lines['Total']):,} per million when each `POST /events` carries one"
        f" (the page's rating control), of which USD {usd(writes)} is DynamoDB writes (2 WRU for the item in a"
        " transaction and, counted the same way as an upper bound, 2 for its entry in the index by time) and the"
        " rest the API call and its tracing; `--events-per-post` prices fuller calls (up to 100 events share one"
        " call)."
    )


def what_the_tables_say(a: Assumptions, rates: tuple[float, float] = RATES) -> str:
    """The bullets after table (c): the bill, the sizing, the managed alternative, what is left out."""
    lines = cost_per_million(a)
    bill = lines[-1].usd
    path = sum(line.usd for line in lines[:-1] if not line.hop.startswith(OBSERVABILITY))
    pointer = bill - total(replace(a, named_user_fraction=0.0))
    before = replace(a, batching_window_s=1.0, long_poll=False)  # the page's old short polling, table (a2)
    low, high = rates
    calls = 1 + flow(a).gets
    per_worker = worker_rps(a.worker_per_request_ms, a.batch_size, a.worker_invocation_ms)
    busy = {}
    for r in rates:
        ar = replace(a, rate_rps=r)
        busy[r] = concurrency_for(r, ar.worker_per_request_ms, batching_for(ar).mean_batch, ar.worker_invocation_ms)
    spread = personalize_cost(MILLION_PER_MONTH_RPS)
    personalize = {r: usd(personalize_cost(r)["total"]) for r in rates}
    ours = {r: usd(total(replace(a, rate_rps=r), first_tier=False) * r * SECONDS_PER_MONTH / MILLION) for r in rates}
    plenty = "plenty" if setting_for(busy[low]) <= CONFIG.max_concurrency else "too few"
    bullets = [
        f"**A million requests a month costs about USD {bill:,.0f} at list prices** (USD"
        f" {usd(total(replace(a, tracing=False)))} without X-Ray), of which the request path (API Gateway, the two"
        f" functions, SQS, DynamoDB) is about USD {path:,.0f} and observability the rest (the user's request pointer,"
        f" written in the request's own transaction, and the events Query add USD {usd(pointer)}: the transaction"
        f" doubles both writes): at {a.rate_rps:.2f} requests/s X-Ray's default rule records almost every call."
        f" Long-polling takes the API Gateway line from USD {usd(_line(before, 'API Gateway'))} with the page's old"
        f" short polling to USD {usd(_line(a, 'API Gateway'))}: one GET per request instead of"
        f" {flow(before).gets:.1f}.",
        f"**One worker environment sustains about {per_worker:,.0f} requests/s** with full batches (it waits on three"
        f" DynamoDB calls per message, {a.worker_io_ms:g} ms assumed; the engine alone would do"
        f" {worker_rps(a.worker_engine_ms):,.0f}/s). By Little's law {low:,.0f} requests/s keep {busy[low]:.1f} worker"
        f" environments busy (the deployed `max_concurrency={CONFIG.max_concurrency}` is {plenty}) and {high:,.0f}"
        f" requests/s keep {busy[high]:.1f} busy: **`max_concurrency` must rise to about {setting_for(busy[high])}**"
        f" for that (the deployed {CONFIG.max_concurrency} caps the worker near"
        f" {per_worker * CONFIG.max_concurrency:,.0f} requests/s), and the API stage's throttle"
        f" ({CONFIG.throttle_rate:g} calls/s, about {CONFIG.throttle_rate / calls:.0f} recommendation requests/s with"
        f" long-polling) must rise to about {high * calls:,.0f} calls/s, with the usage plan and WAF's per-IP limit"
        " to match.",
        "**Amazon Personalize** bills a campaign at least 1 TPS around the clock: USD"
        f" {usd(spread['inference'])} a month with no traffic, so a million requests a month cost USD"
        f" {usd(spread['total'])} there against USD {bill:,.0f} here; sustained, USD {personalize[low]} a month at"
        f" {low:,.0f} requests/s (this stack USD {ours[low]}) and USD {personalize[high]} at {high:,.0f}/s (USD"
        f" {ours[high]}). Personalize's figure is inference and training only (no API in front, no tracing). Not"
        " modelled: the User-Personalization-v2 recipe, priced differently; its numbers were not in the sources we"
        " could read.",
        "Not included: free tiers, the web page's path (CloudFront requests, WAF's USD 0.60 per million requests"
        " inspected), data transfer out, and the fixed monthly costs in [Cost at rest](deploying.md#cost-at-rest).",
    ]
    return "What the tables say:\n\n" + "\n".join(_wrap(b, "- ", "  ") for b in bullets)


def batching_window(a: Assumptions) -> str:
    """The paragraph before table (d): why the deployed worker has no batching window."""
    windowed = replace(a, batching_window_s=1.0)
    b0, b1 = batching_for(a), batching_for(windowed)
    fewer = 1 - b1.invocations_per_request / b0.invocations_per_request
    saved = sum(_line(a, hop) - _line(windowed, hop) for hop in INVOCATION_LINES)
    at_100 = batching_for(replace(windowed, rate_rps=100))
    return _wrap(
        "**The batching window: none** (measured on the local stack, `make loadtest`: [The batching window,"
        " measured](operating.md#the-batching-window-measured)). Modelled for AWS (table (d)): at a million requests"
        " a month a 1 s window gathers"
        f" {b1.mean_batch:.2f} messages per invocation ({fewer:.1%} fewer invocations than without one, USD"
        f" {saved:.2f} per million less for the worker and its event source, while each long-poll waits longer for"
        f" its answer: USD {usd(total(windowed))} per million in all against {usd(total(a))}) and adds"
        f" {b1.mean_added_s:g} s on average; at 100 requests/s it adds {at_100.mean_added_s * 1000:.0f} ms for"
        " batches that form without it; at 1,000/s they are full either way. So"
        f" `batching_window_s={CONFIG.batching_window_s}` with `batch_size={CONFIG.batch_size}` (the largest batch"
        " SQS allows without a window); `max_concurrency` already caps the write rate."
    )


LATENCY = "**Latency budget of the deployed flow** (warm, network excluded; each hop with its source):"


def page(a: Assumptions | None = None) -> str:
    """The whole page, as markdown (the deployed configuration unless ``a`` says otherwise)."""
    a = a or Assumptions()
    before: dict[str, list[str]] = {"d": [batching_window(a)], "e": [LATENCY]}
    after: dict[str, list[str]] = {"a3": [after_events(a)], "c": [what_the_tables_say(a)]}
    blocks = [
        "# Latency and cost in AWS",
        _wrap(
            f"*Generated by `{PAGE_COMMAND}` (or `make costs`) from the cost model in `infra/costs/`: edit the model"
            " or its page (`infra/costs/page.py`), not this file. `tests/infra/test_costs_page.py` fails when this"
            " page is stale.*"
        ),
        intro(a),
        _wrap(assumptions_line(a)),
    ]
    for section in sections(a):
        body = [block if block.startswith("|") else _wrap(block) for block in section.blocks]
        blocks += [*before.get(section.key, []), f"## {section.heading}", *body, *after.get(section.key, [])]
    return "\n\n".join(blocks) + "\n"
