"""What the local stack's two process pools share: spawned processes that are replaced when they die."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any


class ProcessPool:
    """``n`` processes started by ``_start(i)`` (spawned: nothing of the parent's state leaks in), replaced when one
    dies as Lambda starts a new container, stopped together through one event."""

    def __init__(self, n: int) -> None:
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
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
        """Let each process finish what it holds, then make sure it is gone."""
        self._stop.set()
        for process in self.processes:
            if process is not None:
                process.join(timeout=timeout_s)
                if process.is_alive():
                    process.kill()
                    process.join(timeout=5)
