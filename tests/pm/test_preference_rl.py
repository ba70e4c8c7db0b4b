"""RL from a preference model on the local engine: a toy policy (a random
model over a 34-token character tokenizer, one-character replies) trained
with `--env preference` against the `train pm` judge wins more often against
its own start, as the judge sees it (the `win_rate` evaluator in the run);
killed with -9, the run resumes to exactly the uninterrupted run's metrics and
weights. The `win_rate` evaluator also runs from `cookbook eval`.

One character per reply keeps it small enough to learn in a few steps, like
the `first_token` env: the judge's verdicts between characters are a fixed
tournament, and the policy learns to answer with the characters that win it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from sl_helpers import rows, run_cli, signal_after_step

pytest.importorskip("torch")

TIMING = ("time/", "step_time", "elapsed")
STEPS = 8


def toy() -> str:
    from cookbook_cli.rl.toy_tokenizer import toy_model

    return toy_model("tiny")


def rl_args(judge: Path, log_dir: Path, *extra: str) -> list[str]:
    return [
        "train", "rl", "--env", "preference", "--model", toy(), "--renderer", "role_colon", "--lora-rank", "0", "--lr", "3e-2",
        "--group-size", "4", "--groups-per-batch", "8", "--max-steps", str(STEPS), "--save-every", "2", "--log-dir", str(log_dir),
        *extra, f"env.judge={judge}", "max_tokens=1", "num_groups_to_log=0", "eval_every=4",
        f"evaluators=win_rate judge={judge} max_tokens=1",
    ]


def untimed(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in metrics]


@pytest.fixture(scope="module")
def rl_run(pm_run, tmp_path_factory):
    judge, _ = pm_run
    log_dir = tmp_path_factory.mktemp("rlhf") / "reference"
    proc = run_cli(rl_args(judge, log_dir), timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return judge, log_dir, proc


def test_the_policy_wins_more_often_against_its_start_as_the_judge_sees_it(rl_run):
    _, log_dir, proc = rl_run
    metrics = rows(log_dir)
    wins = [(r["step"], r["test/win_rate/win_rate"]) for r in metrics if "test/win_rate/win_rate" in r]
    assert [s for s, _ in wins] == [0, 4, STEPS], wins
    start, end = wins[0][1], wins[-1][1]
    assert start == 0.5, wins  # the start against itself, the same seeds: the same replies, no preference
    assert end >= 0.7, wins
    trained = [r for r in metrics if "env/reward/mean" in r]
    assert all(abs(r["env/reward/mean"] - 0.5) < 1e-6 for r in trained)  # win rates within a group average 1/2
    assert all("env/preference/win_rate" in r and "env/preference/preference" in r for r in trained)
    assert "mean reward" in proc.stdout


def test_win_rate_runs_from_cookbook_eval(rl_run, tmp_path):
    judge, log_dir, _ = rl_run
    proc = run_cli(["eval", "--run", str(log_dir), "win_rate", f"judge={judge}", "max_tokens=1", "max_examples=4"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "win_rate" in proc.stdout and "preference" in proc.stdout


def test_kill_9_resumes_rl_with_the_preference_env_to_the_same_run(rl_run, tmp_path):
    judge, ref_dir, _ = rl_run
    log_dir = tmp_path / "run"
    args = rl_args(judge, log_dir, "--if-exists", "resume")
    proc = run_cli(args, prelude=signal_after_step(2, signal.SIGKILL), timeout=1200)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    proc = run_cli(args, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in rows(log_dir)] == [r["step"] for r in rows(ref_dir)]
    assert untimed(rows(log_dir)) == untimed(rows(ref_dir))

    from safetensors.numpy import load_file

    def final(d: Path) -> dict:
        (record,) = [c for c in rows(d, "checkpoints.jsonl") if c["final"]]
        return load_file(str(d / record["state_path"] / "weights.safetensors"))

    got, want = final(log_dir), final(ref_dir)
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "env preference needs a judge: env.judge=RUN"),
        (["env.judge=/no/such/pm-run"], "judge '/no/such/pm-run' does not exist"),
        (["env.judge=random:tiny:llama3", "env.prompts=/no/such/prompts.jsonl"], "prompt file '/no/such/prompts.jsonl' does not exist"),
        (["--init-from", "/no/such/sft-run", "env.judge=random:tiny:llama3"], "--init-from '/no/such/sft-run' does not exist"),
    ],
)
def test_bad_preference_env_input_is_one_line(tmp_path, args, message):
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    result = CliRunner().invoke(app, ["train", "rl", "--env", "preference", "--log-dir", str(tmp_path / "run"), *args])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "run").exists()
