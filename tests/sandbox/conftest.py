"""Fixtures of the sandbox tests: the backend under test, and checks that the host is unharmed."""

from __future__ import annotations

import os
import select
import shutil
import tempfile
from pathlib import Path

import pytest

from cookbook_cli.sandbox.fallback import _passable


@pytest.fixture
def fallback_python() -> str | None:
    """An interpreter the fallback can run: under root it runs code as an unprivileged
    user, who may not reach the interpreter running the tests (e.g. one under /root)."""
    if os.geteuid() != 0:
        return None
    from cookbook_cli.sandbox.interpreter import interpreter, interpreter_roots

    for python in (None, "/usr/bin/python3"):
        if (python is None or shutil.which(python)) and all(
            _passable(p) for p in [interpreter(python), *interpreter_roots(python)]
        ):
            return python
    pytest.skip("no interpreter an unprivileged user can reach, for the fallback under root")


@pytest.fixture
def sandbox_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where run_code makes its temporary folders during the test (empty again after each run)."""
    root = tmp_path / "sandbox-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def descendants(pid: int | None = None) -> set[int]:
    """The processes below `pid` (default: this one), from /proc."""
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def wait_exit(pid: int) -> None:
    """Wait for the exit of a process that is not our child (an event: its pidfd turns readable)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], 60)  # a safety net: the exit is the event waited for
        assert ready, f"process {pid} still runs a minute after the sandbox returned"
    finally:
        os.close(fd)


def assert_host_clean(sandbox_tmp: Path, before: set[int]) -> None:
    """No process of the run is left, and its temporary folder is gone."""
    assert descendants() <= before
    assert list(sandbox_tmp.iterdir()) == []
