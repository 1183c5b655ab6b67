"""``python -m infra.costs``: print the report for the deployed configuration with the CLI's overrides, or write the
docs page (``--page docs/costs.md``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import infra.costs
from infra.costs.assumptions import CONFIG, Assumptions
from infra.costs.page import PAGE_COMMAND, page
from infra.costs.report import RATES, report

DESCRIPTION = (infra.costs.__doc__ or "").split("\n\n")[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION, prog="python -m infra.costs")
    parser.add_argument("--worker-ms", type=float, help="worker ms per message (engine + DynamoDB calls)")
    parser.add_argument("--api-ms", type=float, help="API function ms per call (POST and GET)")
    parser.add_argument("--window", type=float, help=f"batching window s (config: {CONFIG.batching_window_s})")
    parser.add_argument("--batch", type=int, help=f"batch size (config: {CONFIG.batch_size})")
    parser.add_argument("--achieved-batch", type=float, help="messages per invocation achieved (default: modelled)")
    parser.add_argument("--polls", type=float, help="status GETs per request (default: from the poll schedule)")
    parser.add_argument("--long-poll", type=float, metavar="S", help="use GET ?wait=S instead of short polling")
    parser.add_argument("--arch", choices=("x86_64", "arm64"), help=f"architecture (config: {CONFIG.architecture})")
    parser.add_argument("--completed-kb", type=float, help="COMPLETED item size in KB (default 1.95)")
    parser.add_argument("--no-tracing", action="store_true", help="X-Ray off")
    parser.add_argument("--events-per-post", type=float, help="events per POST /events call for (a3) (default 1)")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES), help="sustained rates for (b), (c)")
    parser.add_argument(
        "--page",
        metavar="PATH",
        help="write the docs page (prose and every table, default configuration) to PATH instead of printing",
    )
    return parser.parse_args(argv)


def assumptions_from(args: argparse.Namespace) -> Assumptions:
    """``Assumptions`` with the CLI's overrides."""
    a = Assumptions()
    changes: dict = {}
    if args.worker_ms is not None:
        changes.update(worker_engine_ms=args.worker_ms, worker_io_ms=0.0)
    if args.api_ms is not None:
        changes.update(api_post_ms=args.api_ms, api_get_ms=args.api_ms)
    if args.window is not None:
        changes["batching_window_s"] = args.window
    if args.batch is not None:
        changes["batch_size"] = args.batch
    if args.achieved_batch is not None:
        changes["achieved_batch"] = args.achieved_batch
    if args.polls is not None:
        changes["polls_per_request"] = args.polls
    if args.long_poll is not None:
        changes.update(long_poll=True, long_poll_wait_s=args.long_poll)
    if args.arch is not None:
        changes["architecture"] = args.arch
    if args.completed_kb is not None:
        changes["completed_item_kb"] = args.completed_kb
    if args.no_tracing:
        changes["tracing"] = False
    if args.events_per_post is not None:
        changes["events_per_post"] = args.events_per_post
    return replace(a, **changes)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    a = assumptions_from(args)
    if args.page is None:
        print(report(a, args.rates))
        return
    if a != Assumptions() or tuple(args.rates) != RATES:
        sys.exit("error: --page writes the page for the deployed configuration; leave out the other options")
    Path(args.page).write_text(page())
    print(f"wrote {args.page} ({PAGE_COMMAND})")


if __name__ == "__main__":
    main()
