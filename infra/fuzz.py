"""Fuzz the local stack's API with schemathesis, once per kind of caller: every check, every phase (stateful
included), a fixed seed.

``python -m infra.fuzz [--max-examples 500] [--seed 42] [--artifact DIR] [--as operator visitor person]`` starts
the local stack and runs the schemathesis CLI against it as each kind of caller (``CALLERS``):

* ``operator``: the API as API Gateway serves it, the whole document, with the stack's API key (and a signed-up
  person's ID token, so that the personal routes ``/me...`` are fuzzed past their 401);
* ``visitor``: the page's path ``/api/`` with no credentials at all, as anyone on the internet calls it (CloudFront,
  or the local gateway, adds the page's key): the page's view of the document (:func:`page_document`: only the
  operations the page may call);
* ``person``: the page's path with the person's token and nothing else.

It exits with the first failing run's status. What the fuzzer may expect beyond the document is in
``schemathesis.toml`` (an entry per exception, each with its reason). The tests run the same with fewer examples
(tests/infra/test_fuzz.py). The throttles are off: the fuzzer tests the contract (429 is documented on every
operation); the limits are tested by tests/infra/test_throttle.py and measured by ``make flood``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from contract import is_artifact
from infra import site_routes

ROOT = Path(__file__).resolve().parents[1]
SEED = 42
CALLERS = ("operator", "visitor", "person")
API_PREFIX = "/api"
KEY_SCHEME = "apiKey"  # the document's name for the x-api-key scheme (infra.openapi)


@dataclass(frozen=True)
class Run:
    """One schemathesis run: the document (URL or file), the base URL it is applied to, the headers sent."""

    caller: str
    schema: str
    base_url: str
    headers: dict[str, str]


def page_document(doc: dict) -> dict:
    """The API document as the page's path serves it: only the operations CloudFront lets through ``/api/``, and no
    API key asked of the caller (CloudFront adds the page's); the personal routes still need a person's token."""
    paths = {}
    for path, operations in doc["paths"].items():
        kept = {
            method: {**op, "security": _without_key(op.get("security", doc.get("security", [])))}
            for method, op in operations.items()
            if site_routes.allowed(method.upper(), _example_path(path))
        }
        if kept:
            paths[path] = kept
    schemes = {k: v for k, v in doc.get("components", {}).get("securitySchemes", {}).items() if k != KEY_SCHEME}
    components = {**doc.get("components", {}), "securitySchemes": schemes}
    return {**doc, "paths": paths, "security": [], "components": components}


def _without_key(requirements: list[dict]) -> list[dict]:
    kept = [{k: v for k, v in r.items() if k != KEY_SCHEME} for r in requirements]
    return [r for r in kept if r]


def _example_path(template: str) -> str:
    """``/recommendations/{request_id}`` -> ``/recommendations/x``: what site_routes' patterns are matched against."""
    return "/".join("x" if part.startswith("{") else part for part in template.split("/"))


def runs(url: str, api_key: str | None, token: str | None, page_schema: str) -> dict[str, Run]:
    """Every kind of caller's run against the stack at ``url`` (``page_schema``: the page's document, a file)."""
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    return {
        "operator": Run("operator", f"{url}/openapi.json", url, ({"x-api-key": api_key} if api_key else {}) | bearer),
        "visitor": Run("visitor", page_schema, url + API_PREFIX, {}),
        "person": Run("person", page_schema, url + API_PREFIX, bearer),
    }


def schemathesis_command(run: Run, max_examples: int, seed: int = SEED) -> list[str]:
    cli = Path(sys.executable).with_name("schemathesis")
    cmd = [str(cli), "--config-file", str(ROOT / "schemathesis.toml"), "run", run.schema, "--url", run.base_url]
    cmd += ["--checks", "all"]
    cmd += ["--phases", "examples,coverage,fuzzing,stateful", "--seed", str(seed), "--max-examples", str(max_examples)]
    cmd += ["--generation-database", "none", "--request-timeout", "30", "--no-color"]
    for name, value in run.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    return cmd


def fuzz(
    url: str,
    api_key: str | None,
    max_examples: int,
    seed: int = SEED,
    token: str | None = None,
    callers: tuple[str, ...] = CALLERS,
) -> dict[str, subprocess.CompletedProcess]:
    """Run schemathesis against a running stack as each of ``callers``; each run's output is in its result."""
    with urllib.request.urlopen(f"{url}{API_PREFIX}/openapi.json", timeout=30) as answer:  # as the page reads it
        doc = json.load(answer)
    with tempfile.TemporaryDirectory() as tmp:
        page_schema = Path(tmp) / "page-openapi.json"
        page_schema.write_text(json.dumps(page_document(doc)))
        planned = runs(url, api_key, token, str(page_schema))
        return {
            caller: subprocess.run(
                schemathesis_command(planned[caller], max_examples, seed),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            for caller in callers
        }


def main(argv: list[str] | None = None) -> int:
    from infra.accounts import running_target, sign_up
    from infra.local import LocalStack
    from infra.local.stack import DEFAULT_ARTIFACT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--max-examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--as", dest="callers", nargs="+", choices=CALLERS, default=list(CALLERS))
    args = parser.parse_args(argv)
    if not is_artifact(args.artifact):
        print(f"error: no artifact at {args.artifact}: run `make export` first", file=sys.stderr)
        return 2
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    with LocalStack(args.artifact, port=0, limits=None) as stack:
        token = sign_up(running_target(stack), "fuzz@example.com", "fuzzing password 1")["id_token"]
        done = fuzz(stack.url, stack.api_key, args.max_examples, args.seed, token, tuple(args.callers))
    status = 0
    for caller, result in done.items():
        print(f"===== as {caller} =====")
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
        status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
