"""Resume through the shared run lifecycle, on the local engine, in real
processes: a run killed (-9) or interrupted (Ctrl-C, SIGTERM) resumes to exactly
the metrics and final weights of an uninterrupted run, for `train sl` and
`train rl`; a copied run resumes from its own checkpoints; a damaged newest
checkpoint falls back to the previous intact one, and none left intact is one
line. Each interrupted run serves every check it can, since a run costs seconds."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from sl_helpers import assert_same_run, resume_words, rows, run_cli, signal_after_step, untimed

pytest.importorskip("torch")

SL = ["train", "sl", "--renderer", "llama3", "--max-steps", "6", "--batch-size", "4", "--lr", "0.03", "--eval-every", "3",
      "--save-every", "2", "--max-length", "128"]
RL = ["train", "rl", "--env", "first_token", "--max-steps", "6", "--save-every", "2", "--group-size", "4", "--groups-per-batch", "4"]


def sl_args(log_dir: Path, *extra: str) -> list[str]:
    return [*SL, "--log-dir", str(log_dir), *extra, "dataset.test_size=8"]


def rl_args(log_dir: Path, *extra: str) -> list[str]:
    return [*RL, "--log-dir", str(log_dir), *extra, "num_groups_to_log=0"]


@pytest.fixture(scope="module")
def sl_reference(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("sl") / "reference"
    proc = run_cli(sl_args(log_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return log_dir


def test_ctrl_c_then_a_copy_resumes_exactly_and_the_damaged_original_says_so(sl_reference, tmp_path):
    """One run stopped with Ctrl-C serves three checks, each of which needed a
    run of its own: the stop is one line holding the command that resumes it;
    a copy of the run resumes from its own checkpoints (the original's weights
    made garbage first) with those words to exactly the uninterrupted run; and
    the original, its only checkpoint damaged, says so in one line."""
    original = tmp_path / "original"
    proc = run_cli(sl_args(original), prelude=signal_after_step(2, signal.SIGINT))
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Stopped: train sl interrupted after step "), proc.stderr
    assert " of 6; it resumes from the checkpoint at step 2." in lines[0]
    words = resume_words(proc.stderr)
    at = words.index("--log-dir") + 1
    assert words[at] == str(original) and words[words.index("--if-exists") + 1] == "resume"
    assert [c["step"] for c in rows(original, "checkpoints.jsonl")] == [2]

    copy = tmp_path / "moved" / "copy"
    shutil.copytree(original, copy)
    for f in original.rglob("*.safetensors"):  # the original's weights are now garbage
        f.write_bytes(b"not a checkpoint")
    (original / "weights" / "step-000002" / "meta.json").unlink()
    proc = run_cli([*words[:at], str(copy), *words[at + 1:]])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 6)" in proc.stdout
    assert "damaged" not in proc.stdout
    assert_same_run(copy, sl_reference)
    config = (copy / "config.json").read_text()
    assert str(original) not in config and str(original) not in (copy / "checkpoints.jsonl").read_text()

    proc = run_cli(words)  # the original, as the stop said
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Checkpoint step-000002 is damaged (weights/step-000002/meta.json is missing)" in proc.stdout
    assert "no intact checkpoint is left" in proc.stderr and "--if-exists overwrite" in proc.stderr


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(sl_reference, tmp_path):
    log_dir = tmp_path / "run"
    proc = run_cli(sl_args(log_dir), prelude=signal_after_step(4, signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [2, 4]
    weights = log_dir / "weights" / "step-000004" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    scratch = log_dir / "weights" / ".step-000006.tmp-deadbeef"
    scratch.mkdir()  # what a write killed half-way leaves
    proc = run_cli(sl_args(log_dir, "--if-exists", "resume"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Checkpoint step-000004 is damaged (weights/step-000004/weights.safetensors fails its checksum); trying step-000002" in proc.stdout
    assert "Resuming from checkpoint step-000002 (step 2 of 6)" in proc.stdout
    assert not scratch.exists()
    assert_same_run(log_dir, sl_reference)


@pytest.fixture(scope="module")
def rl_reference(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("rl") / "reference"
    proc = run_cli(rl_args(log_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return log_dir


def test_rl_sigterm_stops_in_one_line_and_its_resume_killed_with_9_resumes_exactly(rl_reference, tmp_path):
    """SIGTERM stops the run in one line; the command it prints, killed with -9
    after step 3, has logged what the uninterrupted run did; resumed once more
    (from the step-2 checkpoint, its only one) it ends as that run did."""
    log_dir = tmp_path / "run"
    proc = run_cli(rl_args(log_dir), prelude=signal_after_step(2, signal.SIGTERM))
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Stopped: train rl interrupted after step" in proc.stderr
    words = resume_words(proc.stderr)
    proc = run_cli(words, prelude=signal_after_step(3, signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 6)" in proc.stdout
    assert [c["step"] for c in rows(log_dir, "checkpoints.jsonl")] == [2]
    assert untimed(rows(log_dir)) == untimed(rows(rl_reference))[:4]
    proc = run_cli(words)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from checkpoint step-000002 (step 2 of 6)" in proc.stdout
    assert [r["step"] for r in rows(log_dir)] == list(range(6))
    assert_same_run(log_dir, rl_reference)


def test_an_async_rl_run_reproduces_itself(tmp_path):
    runs = []
    for name in ("a", "b"):
        proc = run_cli(rl_args(tmp_path / name, "--max-steps-off-policy", "1"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(untimed(rows(tmp_path / name)))
    assert runs[0] == runs[1]
    assert max(r["staleness/max"] for r in runs[0]) <= 1
