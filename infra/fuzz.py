"""Fuzz the local stack's API with schemathesis: every check, every phase (stateful included), a fixed seed.

``python -m infra.fuzz [--max-examples 500] [--seed 42] [--artifact DIR]`` starts the local stack, points the
schemathesis CLI at the OpenAPI document it serves (with the stack's API key and a signed-up person's ID token)
and exits with schemathesis's status.
What the fuzzer may expect beyond the document is in ``schemathesis.toml`` (one entry, with its reason). The tests
run the same with fewer examples (tests/infra/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from contract import is_artifact

ROOT = Path(__file__).resolve().parents[1]
SEED = 42


def schemathesis_command(
    url: str, api_key: str | None, max_examples: int, seed: int = SEED, token: str | None = None
) -> list[str]:
    """``token``: a person's ID token, so that the personal routes (``/me...``) are fuzzed past their 401."""
    cli = Path(sys.executable).with_name("schemathesis")
    cmd = [str(cli), "--config-file", str(ROOT / "schemathesis.toml"), "run", f"{url}/openapi.json", "--url", url]
    cmd += ["--checks", "all"]
    cmd += ["--phases", "examples,coverage,fuzzing,stateful", "--seed", str(seed), "--max-examples", str(max_examples)]
    cmd += ["--generation-database", "none", "--request-timeout", "30", "--no-color"]
    if api_key:
        cmd += ["-H", f"x-api-key: {api_key}"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    return cmd


def fuzz(
    url: str, api_key: str | None, max_examples: int, seed: int = SEED, token: str | None = None
) -> subprocess.CompletedProcess:
    """Run schemathesis against a running stack; its output is in the result."""
    cmd = schemathesis_command(url, api_key, max_examples, seed, token)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def main(argv: list[str] | None = None) -> int:
    from infra.accounts import running_target, sign_up
    from infra.local import LocalStack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from infra.local.stack import DEFAULT_ARTIFACT

    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--max-examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if not is_artifact(args.artifact):
        print(f"error: no artifact at {args.artifact}: run `make export` first", file=sys.stderr)
        return 2
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    with LocalStack(args.artifact, port=0) as stack:
        token = sign_up(running_target(stack), "fuzz@example.com", "fuzzing password 1")["id_token"]
        done = fuzz(stack.url, stack.api_key, args.max_examples, args.seed, token)
    print(done.stdout)
    print(done.stderr, file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
