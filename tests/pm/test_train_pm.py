"""`cookbook train pm` end to end on the local engine (tiny random Llama, CPU),
on the shipped sample comparisons: the judge's held-out accuracy (both orders
averaged) reaches 0.9 with its position bias reported; the run is a run like
any other (`runs show`, `sample`, `eval`, `export`); a run killed with -9 after a step
and during a checkpoint write resumes to the uninterrupted run's metrics and
weights."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from pm_helpers import PM_STEPS as STEPS, pm_args
from sl_helpers import rows, run_cli, signal_after_step, write_jsonl
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

pytest.importorskip("torch")

TIMING = ("tokens_per_s", "step_time", "elapsed")


def untimed(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in metrics]


def test_the_judge_learns_the_sample_preferences_and_reports_its_position_bias(pm_run):
    log_dir, proc = pm_run
    metrics = rows(log_dir)
    evals = [r for r in metrics if "test/accuracy" in r]
    assert [r["step"] for r in evals] == [0, 10, STEPS]
    final = evals[-1]
    assert final["final"] and final["test/pairs"] == 30
    assert final["test/accuracy"] >= 0.9, evals
    assert evals[0]["test/accuracy"] < 0.9  # it learned it: the untrained judge does not know
    for key in ("test/accuracy_one_order", "test/first_rate_minus_half", "test/order_gap"):
        assert key in final
    assert -0.5 <= final["test/first_rate_minus_half"] <= 0.5 and -1 <= final["test/order_gap"] <= 1
    assert metrics[-2]["loss"] < metrics[0]["loss"]
    assert "test accuracy" in proc.stdout and "position bias" in proc.stdout and "first-reply rate - 0.5" in proc.stdout
    assert json.loads((log_dir / "config.json").read_text())["dataset"]["name"] == "comparisons"
    shown = run_cli(["runs", "show", str(log_dir)], timeout=120)
    assert shown.returncode == 0 and "accuracy" in shown.stdout, shown.stdout


def test_a_trained_judge_is_a_run_like_any_other(pm_run, tmp_path):
    log_dir, _ = pm_run
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"messages": [{"role": "user", "content": "Which reply is better? A: Hi. B: Go away."}]}])
    out = tmp_path / "answers.jsonl"
    proc = run_cli(["sample", "--run", str(log_dir), "--prompts", str(prompts), "--out", str(out), "--temperature", "0", "--max-tokens", "2"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 1
    proc = run_cli(["eval", "--run", str(log_dir), "nll", "max_examples=2"], timeout=300)
    assert proc.returncode == 0 and "nll" in proc.stdout, proc.stderr[-2000:]
    proc = run_cli(["export", str(log_dir), "--out", str(tmp_path / "hf")], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "hf" / "config.json").is_file()


def test_kill_9_after_a_step_and_in_a_checkpoint_resumes_to_the_same_run(pm_run, tmp_path):
    ref_dir, _ = pm_run
    log_dir = tmp_path / "run"
    args = pm_args(log_dir, "--if-exists", "resume")
    proc = run_cli(args, prelude=signal_after_step(5, signal.SIGKILL), timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [4]

    kill_in_checkpoint = (
        "import os, signal\nfrom cookbook_cli.engines.local import checkpoints as _c\n_save = _c.save_tensors\n"
        "def save_tensors(path, tensors):\n"
        "    if path.name == 'optimizer.safetensors' and path.parent.name.startswith('.step-000008'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return _save(path, tensors)\n_c.save_tensors = save_tensors\n"
    )
    proc = run_cli(args, prelude=kill_in_checkpoint, timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "Resuming from checkpoint step-000004" in proc.stdout

    proc = run_cli(args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in rows(log_dir)] == list(range(STEPS + 1))
    assert untimed(rows(log_dir)) == untimed(rows(ref_dir))

    from safetensors.numpy import load_file

    final = f"final-{STEPS:06d}"
    got = load_file(str(log_dir / "weights" / final / "weights.safetensors"))
    want = load_file(str(ref_dir / "weights" / final / "weights.safetensors"))
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "pm", "--dataset", "conversations"], "dataset 'conversations' is a supervised dataset; `train pm` takes preference"),
        (["train", "pm", "--batch-size", "1000"], "fewer than one batch of 1000; lower --batch-size"),
        (["train", "pm", "--dataset", "/no/such/prefs.jsonl"], "does not exist"),
    ],
)
def test_bad_pm_input_is_one_line(tmp_path, args, message):
    result = runner.invoke(app, [*args, "--log-dir", str(tmp_path / "run")])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "run").exists()
