"""What the local stack's two process pools share: spawned processes that are replaced when they die.

Stopping is the stack's (the parent's) job. Its processes ignore SIGINT and SIGTERM (:func:`leave_signals_to_parent`),
so that a Ctrl-C or a SIGTERM to the whole process group (systemd, a CI runner: ``kill -- -PGID``) reaches the
parent alone in effect, and it stops them in order: the API stops serving, each worker finishes the batch it holds.
They also exit on their own once the parent is gone. What they share with the parent (the stop and ready flags, the
workers' counters) is plain shared memory without a lock (:class:`Flag`, ``RawValue``): a process killed at any
moment (SIGKILL, or a signal before it ignores them) leaves no lock or condition held that the parent then waits on
for ever (an ``mp.Event`` does: its ``set()`` waits for every process that sleeps in ``wait()`` to wake up).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from typing import Any

STOP_POLL_S = 0.1


def leave_signals_to_parent() -> None:
    """In a process of the stack: ignore Ctrl-C and SIGTERM; the parent stops this process when it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Flag:
    """``Event``-like, set once by one process and read by others (picklable when a process is spawned)."""

    def __init__(self, ctx: Any) -> None:
        self._value = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout_s: float) -> bool:
        """Wait until set (polling) or ``timeout_s`` passed; whether it is set."""
        deadline = time.monotonic() + timeout_s
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(STOP_POLL_S, left))
        return True


class ProcessPool:
    """``n`` processes started by ``_start(i)`` (spawned: nothing of the parent's state leaks in), replaced when one
    dies as Lambda starts a new container, stopped together through one flag."""

    def __init__(self, n: int) -> None:
        self._ctx = mp.get_context("spawn")
        self._stop = Flag(self._ctx)
        self.processes: list[Any] = [None] * n
        self.restarts = 0

    def _start(self, i: int) -> Any:
        raise NotImplementedError

    def replace_dead(self) -> int:
        """Start a new process for each one that died; how many were replaced."""
        replaced = 0
        for i, process in enumerate(self.processes):
            if process is not None and not process.is_alive() and not self._stop.is_set():
                process.join(timeout=0)
                self._start(i)
                replaced += 1
        self.restarts += replaced
        return replaced

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p is not None]

    def stop(self, timeout_s: float) -> None:
        """Let each process finish what it holds, then make sure it is gone (and reaped)."""
        self._stop.set()
        for process in self.processes:
            if process is not None:
                process.join(timeout=timeout_s)
                if process.is_alive():
                    process.kill()
                    process.join(timeout=5)


def stop_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker (started with the first spawned process) and reap it, so that a
    stopped stack leaves no process behind, not even for a moment after it exits; it starts again if needed."""
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    stop = getattr(tracker, "_stop", None)  # CPython's; absent elsewhere, and then the tracker exits after us
    if stop is not None:
        stop()
