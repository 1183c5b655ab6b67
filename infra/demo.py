"""``make demo``: the product end to end on this machine.

Exports the served model if there is no artifact yet (training a quick one first if there is no model either),
starts the local stack (moto + the Lambda handlers + the HTTP API + the web page), submits a known-user request, a
cold-start request from a few ratings, a similar-movies request and a batch, polls each with the client and prints
the results with titles; then, run in a terminal, keeps serving the web page until Ctrl-C (``--no-serve``: stops).

``python -m infra.demo [--artifact artifacts/artifact] [--model artifacts/model] [--port 8765] [--[no-]serve]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import contract
from contract import movie_index
from infra.client import Client, format_status
from infra.local import DEFAULT_ARTIFACT, DEFAULT_PORT, LocalStack, wait_for_interrupt
from lambdas.service.logs import logger

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "artifacts" / "model"
DEMO_MODEL = ROOT / "artifacts" / "demo-model"
# With no model at all, the demo trains the served configuration for at most this many epochs (about 2 minutes on
# 2 cores instead of 4-5: the full run early-stops after about 30). `make train export` replaces it with the full one.
DEMO_EPOCHS = 12

# MovieLens ids (ml-latest-small): 260, 1196, 1210 = the original Star Wars trilogy, 2571 = The Matrix, 1 = Toy Story.
REQUESTS = [
    ("a known user (19), with the movies they rated highest", {"user_id": 19, "k": 10, "include_history": True}),
    (
        "a new user from five ratings (cold start)",
        {"ratings": {"260": 5, "1196": 5, "1210": 4.5, "2571": 5, "1": 2}, "k": 10},
    ),
    ("movies similar to movie 1", {"similar_to": 1, "k": 10}),
    ("a batch of three users", {"user_ids": [1, 2, 3], "k": 5}),
]


def ensure_artifact(artifact: Path, model: Path, demo_model: Path = DEMO_MODEL) -> None:
    """Export ``model`` (if no artifact), each step its own process as ``make export`` runs it.

    With no trained model either, a quick one (the served configuration, at most ``DEMO_EPOCHS`` epochs) is
    trained into ``demo_model`` and exported; the full model (``make train``) is left to be built on its own.
    """
    if contract.is_artifact(artifact):
        files = contract.read_manifest(artifact).get("files", {})
        if movie_index.FILENAME in files:
            return
        print(f"== {artifact} predates the web page's movie index ({movie_index.FILENAME}): exporting it again")
    if not (model / "metadata.json").exists() and (demo_model / "metadata.json").exists():
        model = demo_model
    elif not (model / "metadata.json").exists():
        model = demo_model
        cmd = ["-m", "training.train", "--epochs", str(DEMO_EPOCHS), "--out", str(model)]
        print(
            f"== no model yet: training a quick one ({' '.join(['python', *cmd])}; "
            "`make train export` builds the full one)",
            flush=True,
        )
        subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True)
    print(f"== exporting {model} to {artifact}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "model_export.export", "--model", str(model), "--out", str(artifact)],
        cwd=ROOT,
        check=True,
    )


def run(stack: LocalStack, out=sys.stdout) -> int:
    """Submit every demo request at once, then poll each; returns how many did not complete."""
    client = Client(stack.url, stack.api_key)
    print(
        f"\n== local stack at {stack.url} (model {stack.settings.model_version}, {stack.workers} worker processes)",
        file=out,
    )
    denied = Client(stack.url).request("GET", "/model")
    print(
        f"   without the API key: HTTP {denied.status} {denied.body['error']['code']} (the page's /api/ adds it)",
        file=out,
    )
    t0 = time.perf_counter()
    client.recommend({"user_id": 1, "k": 1}, timeout_s=120)  # the first request pays the worker's cold start
    print(
        f"   the first request (a worker's cold start: imports, the model from S3) took "
        f"{time.perf_counter() - t0:.2f} s",
        file=out,
    )
    refused = client.request("POST", "/recommendations", {"user_id": 19, "ratings": {"1": 5}})
    error = refused.body["error"]
    print(
        f"   a request with two kinds is refused: HTTP {refused.status} {error['code']}: {error['message']}", file=out
    )
    submitted = []
    for title, body in REQUESTS:
        t0 = time.perf_counter()
        accepted = client.submit(body)
        ms = (time.perf_counter() - t0) * 1000
        print(f"   POST {body} -> 202 {accepted['request_id']} ({ms:.0f} ms)", file=out)
        submitted.append((title, accepted, time.perf_counter()))
    failures = 0
    found = client.request("GET", "/movies?q=the%20matrix&limit=3").body
    titles = "; ".join(m["title"] for m in found.get("movies", [])) or found
    print(f"   GET /movies?q=the matrix (title search for the page's type-ahead) -> {titles}", file=out)
    for title, accepted, t0 in submitted:
        doc = client.wait(accepted["request_id"], timeout_s=120)
        print(f"\n== {title}: {doc['status']} after {time.perf_counter() - t0:.2f} s", file=out)
        print(format_status(doc), file=out)
        failures += doc["status"] != "COMPLETED"
    return failures + rate_and_see(client, out)


def rate_and_see(client: Client, out=sys.stdout, user_id: int = 19) -> int:
    """A user rates the top recommended movie (POST /events) and their list changes at once; 1 if it did not.

    Changed means folded in, not only hidden: the next answer used the event, and the movies in both lists are
    scored from moved factors. The user is forgotten afterwards, whatever happened (DELETE /users/{id}), so the page
    and later runs start from the model's own list."""
    body = {"user_id": user_id, "k": 5, "include_metadata": True}
    try:
        before = client.recommend(body, timeout_s=120)["result"]
        top = before["items"][0]
        stored = client.post_events(user_id, [{"movie_id": top["movie_id"], "rating": 0.5}])
        after = client.recommend(body, timeout_s=120)["result"]
        print(
            f"\n== user {user_id} rates their top recommendation, {top['title']}, half a star "
            f"(POST /events -> {stored['stored']} stored); the next request folds it in "
            f"(events_used {after.get('events_used', 0)}):",
            file=out,
        )
        for rank, (a, b) in enumerate(zip(before["items"], after["items"], strict=True), start=1):
            print(f"   {rank}. {a['title'][:45]:<45} -> {b['title'][:45]}", file=out)
        old = {m["movie_id"]: m["score"] for m in before["items"]}
        rescored = [m["score"] != old[m["movie_id"]] for m in after["items"] if m["movie_id"] in old]
        folded = after.get("events_used") == 1 and top["movie_id"] not in [m["movie_id"] for m in after["items"]]
        if not (folded and rescored and all(rescored)):
            print("   FAILED: the rating was not folded into the user's factors", file=out)
            return 1
        return 0
    finally:
        client.request("DELETE", f"/users/{user_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="trained model (used only to export)")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the local stack and its web page running until Ctrl-C (default: when run in a terminal)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT}; 0: any)")
    args = parser.parse_args(argv)
    serve = sys.stdin.isatty() if args.serve is None else args.serve
    t0 = time.perf_counter()
    try:
        ensure_artifact(args.artifact, args.model)
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(exc.cmd[1:])} failed with status {exc.returncode}", file=sys.stderr)
        return 2
    if not args.verbose:
        logger.setLevel("WARNING")
    try:
        stack = LocalStack(args.artifact, port=args.port).start()
    except OSError:
        stack = LocalStack(args.artifact, port=0).start()  # the usual port is taken (a `make local` running?)
    try:
        failures = run(stack)
        print(f"\n== done in {time.perf_counter() - t0:.1f} s", flush=True)
        if serve:
            print(f"\n== the web page: open {stack.url}/ in a browser (Ctrl-C stops the local stack)", flush=True)
            wait_for_interrupt()
        else:
            print(f"   the web page was at {stack.url}/ (`make local` serves it until Ctrl-C)", flush=True)
    finally:
        stack.stop()
    print("== local stack stopped", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
