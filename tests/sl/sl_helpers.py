"""Helpers shared by the supervised-learning tests."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def conv(user: str, assistant: str, system: str | None = None) -> dict[str, Any]:
    msgs = [{"role": "system", "content": system}] if system else []
    return {"messages": [*msgs, {"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"COOKBOOK_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "120"})
    return env


def run_cli(args: list[str], cwd: Path | None = None, timeout: float = 300, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`cookbook ARGS` in a fresh interpreter; `prelude` is Python run first
    (to place a kill point, for instance)."""
    code = f"{prelude}\nimport sys\nfrom cookbook_cli.cli.main import main\nsys.argv = ['cookbook', *{args!r}]\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd or REPO, env=cli_env(), timeout=timeout
    )


def rows(log_dir: Path, name: str = "metrics.jsonl") -> list[dict[str, Any]]:
    """The JSON lines of a run's `name` (none when it does not exist yet)."""
    path = log_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def interrupt_cli(args: list[str], log_dir: Path, sig: int, after_step: int) -> subprocess.CompletedProcess[str]:
    """`cookbook ARGS` in a fresh interpreter, sent `sig` once metrics.jsonl holds `after_step`."""
    code = f"import sys\nfrom cookbook_cli.cli.main import main\nsys.argv = ['cookbook', *{args!r}]\nmain()\n"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not any(r.get("step") == after_step for r in rows(log_dir)):
        assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def resume_words(stderr: str) -> list[str]:
    """The arguments of the `Resume with: cookbook ...` command an interrupted run printed."""
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("Stopped: ")]
    words = shlex.split(line.split("Resume with: ", 1)[1])
    assert words[0] == "cookbook"
    return words[1:]
