"""Browser fixtures: the local stack serving the page, headless Chromium (Debian's package) driven by Playwright.

Chromium is the system one (``/usr/bin/chromium``, or ``$CHROMIUM``): Playwright's own browser download does not
work here. Without it every browser test is skipped with a message saying what to install (``.ci/run`` installs it).
Screenshots go to ``$WEB_SCREENSHOTS`` (default ``artifacts/screenshots``). ``WEB_TEST_ARTIFACT=DIR`` serves another
artifact (e.g. the ml-latest-small one, for the screenshots in docs/web.md); the tests read ids and titles from the API.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def screenshots() -> Path:
    out = Path(os.environ.get("WEB_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def site(request):
    """GIVEN the local stack serving the page at / and the API under /api/."""
    pytest.importorskip("onnxruntime")
    from infra.local import LocalStack
    from lambdas.service.logs import logger

    chosen = os.environ.get("WEB_TEST_ARTIFACT")
    artifact = Path(chosen) if chosen else request.getfixturevalue("small_artifact")
    logger.setLevel("WARNING")
    with LocalStack(artifact, port=0, visibility_timeout_s=1, poll_wait_s=1) as stack:
        yield stack
    logger.setLevel("INFO")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium for the browser tests: install Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, site):
    """A fresh browser context at desktop size; fails the test on any console error or uncaught exception."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    opened.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    opened.problems = problems
    yield opened
    context.close()
    assert not problems, problems
