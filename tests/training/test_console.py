"""The command lines' console: TensorFlow's native log lines filtered out, everything else kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from training.console import is_native_noise

CHILD = """
import sys
from training.console import filter_native_stderr
filter_native_stderr()
import tensorflow as tf
print(float(tf.reduce_sum(tf.constant([1.0, 2.0]))), flush=True)
print("python stderr line", file=sys.stderr, flush=True)
import os
os.write(2, b"native line that is not a log record\\n")
"""


def test_native_log_records_are_recognised_and_nothing_else():
    assert is_native_noise(
        b"I0000 00:00:1796178653.939166   25921 port.cc:153] oneDNN custom operations are on. You may see"
    )
    assert is_native_noise(b"E0000 00:00:1796178853.187120   26645 node_def_util.cc:682] NodeDef mentions")
    assert is_native_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert not is_native_noise(b"Traceback (most recent call last):")
    assert not is_native_noise(b"epoch 1:  40%|####      | 35.0k/88.1k [00:01<00:01, 27.2k ratings/s]")
    assert not is_native_noise(b"F0000 00:00:1.0 1 x.cc:1] a fatal record is kept")


def test_a_cli_process_prints_no_tensorflow_start_up_lines():
    pytest.importorskip("tensorflow")
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "3.0"
    assert "oneDNN" not in proc.stderr and "absl" not in proc.stderr, proc.stderr
    assert "python stderr line" in proc.stderr and "native line that is not a log record" in proc.stderr
