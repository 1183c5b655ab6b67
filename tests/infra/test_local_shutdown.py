"""``python -m infra.local`` stops on SIGTERM, to it alone or to its whole process group (what systemd and CI runners
send): every process it started is gone and reaped, its ports are free, it exits 0 (as on Ctrl-C)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_S = 120  # imports, two moto processes, resources, API and worker processes, on a loaded 2-core machine
STOP_S = 20  # the bound asked of a stop (about 2 s when idle: a worker's 1 s long poll, the API's 0.5 s poll)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc")


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in the group, zombies included (state Z)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if int(fields[2]) == pgid:
            found.append((int(entry.name), fields[0]))
    return found


def port_is_free(port: int) -> bool:
    """Whether a server could listen there again: SO_REUSEADDR, as the stack's servers bind (closed connections
    in TIME_WAIT do not count then; a socket still listening on the port does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def start_stack(artifact: Path, tmp_path: Path) -> tuple[subprocess.Popen, list[int], Path]:
    """The CLI in its own session (its own process group), once it serves; returns it, its ports and its stdout."""
    connection = tmp_path / "local-stack.json"
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING", "RECOMMENDER_LOCAL_CONNECTION": str(connection)}
    cmd = [sys.executable, "-m", "infra.local", "--port", "0", "--artifact", str(artifact), "--quiet"]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:  # files: nobody has to read a pipe
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    deadline = time.monotonic() + START_S
    while "Web page: " not in out.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"the stack did not start (exit {proc.returncode}): {out.read_text()}{err.read_text()[-3000:]}")
        time.sleep(0.1)
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", out.read_text())]
    assert len(set(ports)) == 3, out.read_text()  # the API and two AWS endpoints (moto)
    assert connection.exists() and not any(port_is_free(p) for p in set(ports))
    assert len(group_members(proc.pid)) >= 7  # itself, 2 moto, 2 API, 2 workers (and multiprocessing's tracker)
    return proc, sorted(set(ports)), connection


def assert_all_gone(proc: subprocess.Popen, ports: list[int], connection: Path, tmp_path: Path, sent: float) -> None:
    try:
        code = proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        left = group_members(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"still running {STOP_S}s after SIGTERM: {left}; stderr: {(tmp_path / 'stderr').read_text()}")
    took = time.monotonic() - sent
    # the parent has reaped what it started before exiting: nothing of the group is left, not even a zombie
    assert group_members(proc.pid) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    assert code == 0, (tmp_path / "stderr").read_text()
    assert (tmp_path / "stdout").read_text().rstrip().endswith("stopped")
    assert (tmp_path / "stderr").read_text() == ""  # no traceback from any process
    assert all(port_is_free(p) for p in ports)
    assert not connection.exists()
    print(f"stopped {took:.2f}s after SIGTERM")
    assert took < STOP_S


def test_sigterm_to_the_whole_process_group_stops_everything(fake_artifact, tmp_path):
    proc, ports, connection = start_stack(fake_artifact, tmp_path)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)  # kill -- -PGID: every process of the stack gets it at once
    assert_all_gone(proc, ports, connection, tmp_path, sent)


def test_sigterm_to_the_parent_alone_stops_everything(fake_artifact, tmp_path):
    proc, ports, connection = start_stack(fake_artifact, tmp_path)
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert_all_gone(proc, ports, connection, tmp_path, sent)
