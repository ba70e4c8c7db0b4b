"""`cookbook train dpo` end to end on the local engine (tiny random Llama, CPU),
on the shipped sample comparisons: at step 0 the policy is its reference
(h = 0, loss = ln 2 exactly); held-out accuracy and margin rise; a run killed
with -9 during a step and during a checkpoint write resumes to the
uninterrupted run's metrics and weights, with the same reference and no
reference logprob recomputed."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest
from sl_helpers import run_cli
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

pytest.importorskip("torch")

TIMING = ("tokens_per_s", "step_time", "elapsed")
ARGS = ["train", "dpo", "--max-steps", "6", "--batch-size", "4", "--eval-every", "3", "--save-every", "2"]


def dpo_args(log_dir: Path, *extra: str) -> list[str]:
    return [*ARGS, "--log-dir", str(log_dir), *extra, "dataset.test_size=16"]


def rows(log_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    path = log_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def untimed(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in metrics]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("dpo") / "reference"
    proc = run_cli(dpo_args(log_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return log_dir, proc


def test_the_policy_starts_as_its_reference_and_learns_the_preference(reference):
    log_dir, proc = reference
    metrics = rows(log_dir)
    first, final = metrics[0], metrics[-1]
    assert first["dpo_loss"] == math.log(2) and first["margin"] == 0.0  # h = 0 exactly at step 0
    assert first["test/dpo_loss"] == math.log(2) and first["test/accuracy"] == 0.0
    assert final["final"] and final["test/accuracy"] >= 0.9, final
    assert final["test/margin"] > 0.1 and final["test/dpo_loss"] < math.log(2)
    for row in metrics[:6]:
        assert {"dpo_loss", "accuracy", "chosen_reward", "rejected_reward", "margin", "num_pairs", "tokens", "lr"} <= set(row)
    assert "Reference logprobs: " in proc.stdout and "test accuracy 0.000 -> " in proc.stdout
    sums = json.loads((log_dir / "reference" / "sums.json").read_text())
    assert sums["identity"] == {"kind": "start", "model": "random:tiny:meta-llama/Llama-3.2-1B-Instruct", "checkpoint": None}
    shown = run_cli(["runs", "show", str(log_dir)], timeout=120)
    assert shown.returncode == 0 and "test accuracy" in shown.stdout, shown.stdout


KILL_IN_STEP = """
import os, signal
from cookbook_cli.engines.local import training as _t
_run = _t.LocalTrainingClient._run_custom
calls = [0]
def _run_custom(self, data, fn):
    calls[0] += 1
    if calls[0] == 4:  # inside step 3 (0-based), after the checkpoint at step 2
        os.kill(os.getpid(), signal.SIGKILL)
    return _run(self, data, fn)
_t.LocalTrainingClient._run_custom = _run_custom
"""

KILL_IN_CHECKPOINT = """
import os, signal
from cookbook_cli.engines.local import checkpoints as _c
_save = _c.save_tensors
def save_tensors(path, tensors):
    if path.name == "optimizer.safetensors" and path.parent.name.startswith(".step-000004"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _save(path, tensors)
_c.save_tensors = save_tensors
"""


def test_kill_9_in_a_step_and_in_a_checkpoint_resumes_to_the_same_run(reference, tmp_path):
    ref_dir, _ = reference
    log_dir = tmp_path / "run"
    args = dpo_args(log_dir, "--if-exists", "resume")
    proc = run_cli(args, prelude=KILL_IN_STEP)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [2]
    sums_before = (log_dir / "reference" / "sums.json").read_bytes()

    proc = run_cli(args, prelude=KILL_IN_CHECKPOINT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "Resuming from checkpoint step-000002" in proc.stdout
    assert "Reference logprobs: read from" in proc.stdout  # not recomputed

    proc = run_cli(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Reference logprobs: read from" in proc.stdout
    assert (log_dir / "reference" / "sums.json").read_bytes() == sums_before  # the same reference
    assert [r["step"] for r in rows(log_dir)] == list(range(7))
    assert untimed(rows(log_dir)) == untimed(rows(ref_dir))

    from safetensors.numpy import load_file

    got = load_file(str(log_dir / "weights" / "final-000006" / "weights.safetensors"))
    want = load_file(str(ref_dir / "weights" / "final-000006" / "weights.safetensors"))
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "sl", "--dataset", "comparisons"], "dataset 'comparisons' is a preference dataset; `train sl` takes supervised"),
        (["train", "dpo", "--dataset", "conversations"], "dataset 'conversations' is a supervised dataset; `train dpo` takes preference"),
        (["train", "dpo", "--beta", "0"], "beta must be > 0"),
        (["train", "dpo", "--beta", "nan"], "beta must be"),
        (["train", "dpo", "--reference", "runs/no-such-run/", "--dry-run"], None),
        (["train", "dpo", "--init-from", "/no/such/checkpoint"], "--init-from '/no/such/checkpoint' does not exist"),
    ],
)
def test_bad_dpo_input_is_one_line(tmp_path, args, message):
    result = runner.invoke(app, [*args, "--log-dir", str(tmp_path / "run")] if "--dry-run" not in args else args)
    if message is None:  # --dry-run only resolves the config; the path is checked when the run starts
        assert result.exit_code == 0, result.output
        return
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "run").exists()
