"""docs/costs.md is what the cost model renders (infra/costs/page.py), and holds every table of its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.costs import __main__ as cli
from infra.costs.assumptions import Assumptions
from infra.costs.page import PAGE_COMMAND, PAGE_PATH, page
from infra.costs.report import report

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_cost_page_is_what_the_model_renders():
    committed = ROOT / PAGE_PATH
    assert committed.exists(), f"{PAGE_PATH} is missing: run `{PAGE_COMMAND}`"
    assert committed.read_text() == page(), f"{PAGE_PATH} is stale: run `{PAGE_COMMAND}` (or `make costs`)"


def test_the_page_holds_every_table_of_the_report_and_says_how_it_was_made():
    text = page()
    tables = [block for block in report(Assumptions()).split("\n\n") if block.startswith("|")]
    assert len(tables) == 12  # (a)-(f), the sources, (g) at two data shapes, (h) the abuse bounds
    for block in tables:
        assert block in text
    assert PAGE_COMMAND in text
    assert text.startswith("# ") and text.endswith("\n") and not text.endswith("\n\n")


def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "costs.md"
    cli.main(["--page", str(out)])
    assert out.read_text() == page()
    assert str(out) in capsys.readouterr().out


def test_cli_refuses_a_page_with_other_assumptions(tmp_path):
    with pytest.raises(SystemExit, match="deployed configuration"):
        cli.main(["--page", str(tmp_path / "costs.md"), "--window", "1"])
    assert not (tmp_path / "costs.md").exists()
