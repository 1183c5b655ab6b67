"""Block until Ctrl-C or SIGTERM: ``make local`` and ``make demo`` serve until then."""

from __future__ import annotations

import signal
import time
from typing import Any


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM behaves like Ctrl-C: stop serving, finish the batches in hand, exit 0."""
    raise KeyboardInterrupt


def on_sigterm_interrupt() -> None:
    signal.signal(signal.SIGTERM, _interrupt)


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (the caller then stops the stack)."""
    on_sigterm_interrupt()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
