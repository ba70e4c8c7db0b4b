"""Helpers shared by the supervised-learning tests."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
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


TIMING = ("tokens_per_s", "step_time", "elapsed", "time/")


def untimed(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in metrics]


def final_weights(log_dir: Path) -> dict[str, Any]:
    from safetensors.numpy import load_file

    (record,) = [c for c in rows(log_dir, "checkpoints.jsonl") if c["final"]]
    return load_file(str(log_dir / record["state_path"] / "weights.safetensors"))


def assert_same_run(got: Path, want: Path) -> None:
    """Two runs logged the same metrics (timings aside) and ended with the same weights."""
    got_rows, want_rows = untimed(rows(got)), untimed(rows(want))
    differ = [(g.get("step"), k, g.get(k), w.get(k)) for g, w in zip(got_rows, want_rows)
              for k in sorted(set(g) | set(w)) if g.get(k) != w.get(k)]
    assert got_rows == want_rows, f"{len(got_rows)} vs {len(want_rows)} rows; (step, key, got, want): {differ[:10]}"
    a, b = final_weights(got), final_weights(want)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def signal_after_step(step: int, sig: int) -> str:
    """A prelude: the run sends itself `sig` right after metrics.jsonl holds
    `step`, as a Ctrl-C or `kill` at that moment would. Sent from the event
    itself, not after polling the file, so a busy machine cannot let the run
    finish first. SIGINT gets Python's own handler first, as at a terminal: a
    process started in the background by a script inherits SIGINT ignored."""
    return (
        "import os, signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from cookbook_cli.run import directory as _d\n_log = _d.RunDir.log_metrics\n"
        "def log_metrics(self, s, row):\n    _log(self, s, row)\n"
        f"    if s == {step} and not row.get('final'):\n        os.kill(os.getpid(), {int(sig)})\n"
        "_d.RunDir.log_metrics = log_metrics\n"
    )


def kill_and_resume(args: Any, log_dir: Path, kill_after: int, checkpoint: int, steps: int) -> None:
    """Run `cookbook *args(log_dir)`, kill it with -9 once step `kill_after` is
    logged, and resume it (`args(log_dir, "--if-exists", "resume")`) from
    `checkpoint` (its only checkpoint then) to the end."""
    import signal

    proc = run_cli(args(log_dir), prelude=signal_after_step(kill_after, signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [checkpoint]
    proc = run_cli(args(log_dir, "--if-exists", "resume"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Resuming from checkpoint step-{checkpoint:06d} (step {checkpoint} of {steps})" in proc.stdout


def resume_words(stderr: str) -> list[str]:
    """The arguments of the `Resume with: cookbook ...` command an interrupted run printed."""
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("Stopped: ")]
    words = shlex.split(line.split("Resume with: ", 1)[1])
    assert words[0] == "cookbook"
    return words[1:]
