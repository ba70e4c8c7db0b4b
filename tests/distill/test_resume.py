"""Distillation interrupted resumes as `train rl` and `train sl` do, on the
local engine in real processes. On-policy killed with -9: synchronously to
exactly the metrics and final weights of the uninterrupted run;
asynchronously (K = 1) with every step logged once and no group staler than
K. Off-policy (the epoch loop) killed with -9 or Ctrl-C: to exactly the
uninterrupted run. The teacher is another random model over the student's
tokenizer, so there is something to learn."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sl_helpers import resume_words, rows, run_cli, signal_after_step

pytest.importorskip("torch")

TIMING = ("time/", "step_time", "elapsed")


def distill_args(toy_model: str, prompts: Path, log_dir: Path, *extra: str) -> list[str]:
    teacher = "random:small:" + toy_model.split(":", 2)[2]
    return [
        "train", "distill", "--teacher", teacher, "--model", toy_model, "--renderer", "role_colon", "--prompts", str(prompts),
        "--max-steps", "4", "--save-every", "2", "--group-size", "2", "--groups-per-batch", "2", "--lora-rank", "0", "--lr", "0.03",
        "--log-dir", str(log_dir), *extra, "max_tokens=6", "num_groups_to_log=0", "engine_options.device=cpu",
    ]


def untimed(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in metrics]


def final_weights(log_dir: Path) -> dict:
    from safetensors.numpy import load_file

    (record,) = [c for c in rows(log_dir, "checkpoints.jsonl") if c["final"]]
    return load_file(str(log_dir / record["state_path"] / "weights.safetensors"))


def test_sync_killed_with_9_resumes_to_the_uninterrupted_run(tmp_path, toy_model, prompt_file):
    reference = tmp_path / "reference"
    proc = run_cli(distill_args(toy_model, prompt_file, reference))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "teacher KL" in proc.stdout
    log_dir = tmp_path / "run"
    proc = run_cli(distill_args(toy_model, prompt_file, log_dir), prelude=signal_after_step(2, signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [2]
    proc = run_cli(distill_args(toy_model, prompt_file, log_dir, "--if-exists", "resume"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 4)" in proc.stdout
    assert untimed(rows(log_dir)) == untimed(rows(reference))
    a, b = final_weights(log_dir), final_weights(reference)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert all(abs(r["teacher_kl"]) > 1e-3 for r in rows(reference))  # the teacher really grades


def test_async_killed_with_9_resumes_with_each_step_once(tmp_path, toy_model, prompt_file):
    log_dir = tmp_path / "run"
    args = distill_args(toy_model, prompt_file, log_dir, "--max-steps-off-policy", "1")
    proc = run_cli(args, prelude=signal_after_step(2, signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    proc = run_cli([*args[:-3], "--if-exists", "resume", *args[-3:]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 4)" in proc.stdout
    metrics = rows(log_dir)
    assert [r["step"] for r in metrics] == [0, 1, 2, 3]
    assert max(r["staleness/max"] for r in metrics) <= 1
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [2, 4]


def off_policy_args(toy_model: str, log_dir: Path, *extra: str) -> list[str]:
    teacher = "random:small:" + toy_model.split(":", 2)[2]
    return [
        "train", "distill", "--mode", "off_policy", "--teacher", teacher, "--model", toy_model, "--renderer", "role_colon",
        "--max-steps", "4", "--save-every", "2", "--batch-size", "4", "--max-length", "96", "--topk", "5", "--lora-rank", "0", "--lr", "0.03",
        "--log-dir", str(log_dir), *extra, "engine_options.device=cpu",
    ]


@pytest.fixture(scope="module")
def off_policy_reference(tmp_path_factory, toy_model) -> Path:
    log_dir = tmp_path_factory.mktemp("off_policy") / "reference"
    proc = run_cli(off_policy_args(toy_model, log_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "teacher KL" in proc.stdout
    assert all(r["teacher_kl"] > 1e-3 for r in rows(log_dir))  # the teacher really differs
    return log_dir


def comparable(log: Path) -> list[dict]:
    """The metrics but timings and the teacher-cache count (a resumed run finds
    the earlier steps' top-K in the cache)."""
    return [{k: v for k, v in r.items() if k != "teacher/cache_hits"} for r in untimed(rows(log))]


def assert_same_off_policy_run(log_dir: Path, reference: Path) -> None:
    """The same metrics (`comparable`) and final weights."""
    assert comparable(log_dir) == comparable(reference)
    assert [r["step"] for r in rows(log_dir)] == [0, 1, 2, 3]
    a, b = final_weights(log_dir), final_weights(reference)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_off_policy_ctrl_c_then_kill_9_each_resume_exactly(off_policy_reference, tmp_path, toy_model):
    """Ctrl-C stops the run in one line; the command it prints, killed with -9
    after step 3, has logged what the uninterrupted run did; resumed once more
    (from the step-2 checkpoint, its only one) it ends as that run did."""
    log_dir = tmp_path / "run"
    proc = run_cli(off_policy_args(toy_model, log_dir), prelude=signal_after_step(2, signal.SIGINT))
    assert proc.returncode == 130, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Stopped: train distill interrupted after step "), proc.stderr
    words = resume_words(proc.stderr)
    proc = run_cli(words, prelude=signal_after_step(3, signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 4)" in proc.stdout
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [2]
    assert comparable(log_dir) == comparable(off_policy_reference)[:4]
    resumed = run_cli(words)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 4)" in resumed.stdout
    assert_same_off_policy_run(log_dir, off_policy_reference)
