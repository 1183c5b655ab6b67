"""What the command lines print: progress bars, and TensorFlow's native log lines kept out of the way.

TensorFlow's C++ code logs through absl before absl is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not silence
it: every run printed four lines about oneDNN and CPU instructions before anything the user asked for, and more
(``generator_dataset_op.cc``, ``node_def_util.cc``) once training started. :func:`filter_native_stderr` puts a
filter on file descriptor 2 that drops exactly those records (absl's ``I``/``W``/``E`` lines and the line
announcing them) and passes everything else through; Python's own ``sys.stderr`` keeps writing to the terminal
directly, so tracebacks, warnings and progress bars are untouched.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

# absl's record prefix: level, MMDD, time, thread id, file:line]
NATIVE_RECORD = re.compile(rb"^[IWE]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] ")
NATIVE_NOISE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions:",  # the second line of cpu_feature_guard.cc's record
)
_installed = False


def is_native_noise(line: bytes) -> bool:
    """True for a line TensorFlow's native code logged (dropped by the filter)."""
    return bool(NATIVE_RECORD.match(line)) or line.startswith(NATIVE_NOISE)


def filter_native_stderr() -> None:
    """Drop TensorFlow's native log lines from file descriptor 2 for the rest of the process (idempotent).

    Called by each command line's ``__main__`` before TensorFlow is imported, never by library code or tests.
    """
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")  # noqa: SIM115

    def pump() -> None:
        pending = b""
        with open(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not is_native_noise(line))
                if kept:
                    os.write(terminal, kept)
        if pending and not is_native_noise(pending):
            os.write(terminal, pending)

    thread = threading.Thread(target=pump, name="native-stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:  # at exit: close the pipe (fd 2 back to the terminal) and forward what is still in it
        os.dup2(terminal, 2)
        thread.join(timeout=2.0)

    atexit.register(drain)


def bar(items: Iterable[T] | None = None, *, enabled: bool = True, **kwargs) -> Iterator[T] | tqdm:
    """A tqdm progress bar on stderr with rate and ETA; refreshed twice a second on a terminal, else every 30 s."""
    interactive = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.5 if interactive else 30.0)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("delay", 2.0)  # nothing for work that ends within two seconds
    return tqdm(items, disable=not enabled, file=sys.stderr, **kwargs)
