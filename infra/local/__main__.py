"""``python -m infra.local``: the local stack until Ctrl-C; prints the page's URL, the API's URL and its API key.

The URL and key are also written to ``artifacts/local-stack.json`` (or ``$RECOMMENDER_LOCAL_CONNECTION``; removed
on exit), where ``python -m infra.client`` finds them, so nobody copies the key by hand.

Ctrl-C and SIGTERM stop it the same way, sent to this process alone or to its whole process group
(``kill -- -PGID``, as systemd or a CI runner does): its processes leave signals to it (:mod:`infra.local.processes`),
it stops the API, lets each worker finish its batch, stops the AWS endpoints, reaps every process it started, frees
the ports, prints ``stopped`` and exits 0 (a second signal while it stops is ignored: the stop is bounded). Exit 2:
it could not start, e.g. ``error: MotoPatchError: patch '...' was written for moto ...`` on a moto that the
endpoint's speed-ups (:mod:`infra.local.moto_patches`) were not written for.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from infra.client import local_connection_file
from infra.local.connection import stack_connection
from infra.local.moto_patches import MotoPatchError
from infra.local.processes import stop_resource_tracker
from infra.local.stack import (
    DEFAULT_API_PROCESSES,
    DEFAULT_ARTIFACT,
    DEFAULT_PORT,
    DEFAULT_WORKERS,
    DEPLOYED_LIMITS,
    LocalStack,
)
from infra.local.wait import on_sigterm_interrupt, wait_for_interrupt


def write_connection(url: str, api_key: str | None, path: Path, **extra: str) -> None:
    """Where the running local stack answers, for the client (owner-only permissions: it holds the key), and
    ``extra`` (the events table and DynamoDB endpoint, for ``python -m infra.events_export --local``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "api_key": api_key, **extra}))
    tmp.chmod(0o600)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The request flow locally: moto + the Lambda handlers + HTTP API.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any)")
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT, help="artifact directory (make export)")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help=f"worker processes (default {DEFAULT_WORKERS})"
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=DEFAULT_API_PROCESSES,
        help=f"API function processes (default {DEFAULT_API_PROCESSES})",
    )
    parser.add_argument(
        "--batching-window", type=float, default=0.0, help="seconds a worker gathers a batch for (SQS event source)"
    )
    parser.add_argument("--visibility-timeout", type=int, default=5, help="seconds before a failed message retries")
    parser.add_argument("--no-auth", action="store_true", help="accept API calls without the API key")
    parser.add_argument(
        "--no-throttle",
        action="store_true",
        help=f"no usage-plan throttling (deployed: the page {DEPLOYED_LIMITS.page_rate:g}/s, burst "
        f"{DEPLOYED_LIMITS.page_burst}; an operator key {DEPLOYED_LIMITS.operator_rate:g}/s, burst "
        f"{DEPLOYED_LIMITS.operator_burst})",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log lines")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    on_sigterm_interrupt()
    stack = LocalStack(
        args.artifact,
        args.port,
        workers=args.workers,
        api_processes=max(1, args.api_processes),
        batching_window_s=args.batching_window,
        visibility_timeout_s=args.visibility_timeout,
        api_key=None if args.no_auth else "",
        access_log=not args.quiet,
        limits=None if args.no_throttle else DEPLOYED_LIMITS,
    )
    try:
        stack.start()
    except MotoPatchError as exc:
        _stop(stack)
        print(f"error: MotoPatchError: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _stop(stack)
        return 2
    except KeyboardInterrupt:
        _stop(stack)
        return 0
    connection = local_connection_file()
    try:
        _announce(stack, args.artifact, args.workers, connection)
        wait_for_interrupt()
    except KeyboardInterrupt:  # a signal before the wait began: the same stop
        pass
    finally:
        _stop(stack)
        connection.unlink(missing_ok=True)
    print("stopped", flush=True)
    return 0


def _announce(stack: LocalStack, artifact: Path, workers: int, connection: Path) -> None:
    """Save the connection for the client, and print where everything is."""
    s = stack.settings
    write_connection(
        stack.url,
        stack.api_key,
        connection,
        **stack_connection(stack),
    )
    print(f"model {s.model_version} from {artifact}", flush=True)
    print(f"queue {s.queue_url} (DLQ after {s.max_receive_count} receives), table {s.table_name}", flush=True)
    print(
        f"{workers} worker processes, {stack.api_processes} API processes; AWS endpoints (moto): DynamoDB "
        f"{stack.dynamodb_endpoint_url}, SQS and S3 {stack.endpoint_url}",
        flush=True,
    )
    print(f"API URL: {stack.url}", flush=True)
    if stack.api_key:
        print(f"API key: {stack.api_key} (header x-api-key; saved for the client in {connection})", flush=True)
    print(f"Web page: {stack.url}/ (its calls go through /api/, which adds the key)", flush=True)
    if stack.user_pool is not None:
        print(
            f"Accounts: user pool {stack.user_pool.pool_id} (moto's Cognito): sign up on the page (any confirmation "
            "code works), or python -m infra.accounts --local sign-up EMAIL PASSWORD for a token",
            flush=True,
        )


def _stop(stack: LocalStack) -> None:
    """Stop the stack and reap every process it started; further Ctrl-C or SIGTERM are ignored meanwhile (each part
    of the stop has its own time limit, after which the process is killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stack.stop()
    stop_resource_tracker()


if __name__ == "__main__":
    sys.exit(main())
