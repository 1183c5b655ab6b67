"""Run checkov on the synthesized template: ``python -m infra.scan`` (``make scan`` synthesizes first).

checkov lives in its own virtualenv (``.venv-scan``, from ``requirements-scan.txt``): it brings many dependencies
the app and its tests never need. Prints the passed/failed/skipped counts, every failure and every skip with its
reason (the skips are written into the template by ``infra.checkov``), and exits 1 on any unsuppressed failure,
on a template checkov could not parse, or on a skip ``infra.checkov`` would refuse; 2 when checkov or the template
is missing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.checkov import template_problems
from infra.config import DEFAULT_STACK_NAME, ROOT

CHECKOV = ROOT / ".venv-scan" / "bin" / "checkov"
INSTALL = "python3 -m venv .venv-scan && .venv-scan/bin/pip install -r requirements-scan.txt"


def run_checkov(checkov: Path, template: Path) -> dict[str, Any]:
    """checkov's JSON report on ``template`` (CloudFormation checks only, nothing downloaded)."""
    command = [str(checkov), "-f", str(template), "--framework", "cloudformation", "--output", "json"]
    command += ["--skip-download"]  # no Prisma Cloud guidelines or external checks: the same result offline
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"checkov gave no JSON report (exit {result.returncode}): {result.stderr[-2000:]}") from exc
    # One framework gives one report; checkov answers with a list when it ran several.
    reports = report if isinstance(report, list) else [report]
    (cloudformation,) = [r for r in reports if r.get("check_type") == "cloudformation"] or [None]
    if cloudformation is None:
        raise RuntimeError(f"checkov ran no CloudFormation checks on {template}: {report}")
    return cloudformation


def summarize(report: dict[str, Any]) -> tuple[list[str], bool]:
    """The lines to print and whether the scan is clean (no failure, no parsing error, something checked)."""
    summary = report["summary"]
    results = report["results"]
    lines = [
        f"checkov {summary.get('checkov_version', '?')}: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped ({summary.get('resource_count', '?')} resources, "
        f"{summary['parsing_errors']} parsing errors)"
    ]
    for check in results.get("failed_checks", []):
        lines.append(f"FAILED  {check['check_id']} {check['resource']}: {check['check_name']}")
    for check in results.get("skipped_checks", []):
        comment = check["check_result"].get("suppress_comment", "")
        lines.append(f"skipped {check['check_id']} {check['resource']}: {comment}")
    for path in results.get("parsing_errors", []):
        lines.append(f"PARSING ERROR {path}")
    clean = summary["failed"] == 0 and summary["parsing_errors"] == 0 and summary["passed"] > 0
    return lines, clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=DEFAULT_STACK_NAME, help="stack name (cdk.out/<stack>.template.json)")
    parser.add_argument("--template", type=Path, help="template path (default: from --stack)")
    parser.add_argument("--checkov", type=Path, default=CHECKOV, help=f"checkov executable (default: {CHECKOV})")
    args = parser.parse_args(argv)
    template = args.template or ROOT / "cdk.out" / f"{args.stack}.template.json"
    if not args.checkov.exists():
        print(f"no checkov at {args.checkov}: {INSTALL}", file=sys.stderr)
        return 2
    if not template.exists():
        print(f"no template at {template}: run `make synth` first", file=sys.stderr)
        return 2

    problems = template_problems(json.loads(template.read_text()))
    for problem in problems:
        print(f"BAD SKIP {problem}")
    lines, clean = summarize(run_checkov(args.checkov, template))
    print("\n".join(lines))
    return 0 if clean and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
