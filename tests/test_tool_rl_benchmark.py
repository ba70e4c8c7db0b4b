"""benchmarks/tool_rl.py (too slow for the suite): its warm-up data is right, its
learning rate is the documented multiple, and bad options are refused first."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tool_rl.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))  # the script imports cookbook_command from its folder
    try:
        spec = importlib.util.spec_from_file_location("tool_rl", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_every_shipped_problem_reads_as_an_expression_the_calculator_solves(bench):
    from cookbook_cli.rl.tool_env import number_matches
    from cookbook_cli.rl.tool_rows import shipped_rows
    from cookbook_cli.tools import get_tool

    calculator = get_tool("calculator")
    rows = shipped_rows("calculator_problems.jsonl")
    for row in rows:
        expression = bench.expression_for(row["question"])
        assert expression is not None, row["question"]
        assert number_matches(str(calculator(expression=expression)), row["answer"]), (row, expression)


def test_the_rl_learning_rate_is_the_scale_times_the_models_rl_rule(bench):
    import argparse

    from cookbook_cli.models.defaults import learning_rate_default

    rule = learning_rate_default("smollm2-135m-instruct").for_rank(32, on_policy=True)
    args = argparse.Namespace(model="smollm2-135m-instruct", lr="", lr_scale=2.0)
    assert bench.rl_learning_rate(args) == pytest.approx(2 * rule)
    assert bench.rl_learning_rate(argparse.Namespace(model="x", lr="1e-4", lr_scale=2.0)) == 1e-4


def test_held_out_problems_are_compared_one_by_one(bench, tmp_path):
    for name, rewards in (("warmup", [1.0, 0.0, 0.0]), ("after", [1.0, 1.0, 0.0])):
        folder = tmp_path / "eval" / name / "env"
        folder.mkdir(parents=True)
        folder.joinpath("trajectories.jsonl").write_text(
            "".join(json.dumps({"id": f"test/{i}/0", "rewards": [r]}) + "\n" for i, r in enumerate(rewards)))
    warmup, after = (bench.per_problem(bench.trajectory_rows(tmp_path / "eval" / name)) for name in ("warmup", "after"))
    assert after == {"test/0/0": 1.0, "test/1/0": 1.0, "test/2/0": 0.0}
    assert bench.flips(warmup, after) == (1, 0)
    assert bench.flips({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}) == (1, 1)


def test_sampled_held_out_attempts_score_a_problem_by_their_mean_and_name_their_folder(bench, tmp_path):
    import argparse

    folder = tmp_path / "eval" / "after-t1x4" / "env"
    folder.mkdir(parents=True)
    folder.joinpath("trajectories.jsonl").write_text(json.dumps({"id": "test/0/0", "rewards": [1.0, 0.0, 1.0, 1.0]}) + "\n")
    assert bench.per_problem(bench.trajectory_rows(tmp_path / "eval" / "after-t1x4")) == {"test/0/0": 0.75}
    assert bench.eval_mode(argparse.Namespace(eval_temperature=1.0, eval_samples=4)) == "t1x4"
    assert bench.eval_mode(argparse.Namespace(eval_temperature=0.0, eval_samples=1)) == "greedy"


def test_held_out_accuracy_is_split_by_the_problems_operation_count(bench, tmp_path):
    one, two = "Lena shares 3165 stickers equally among 15 friends.", "Kofi buys 28 tickets at 72 dollars each and pays with 2500 dollars."
    cut_off = {"reply": "", "termination": "no_stop"}  # a reply cut off before its end: no grading logs
    rows = [{"id": "a", "rewards": [1.0, 1.0], "logs": [cut_off, {"question": one}]},
            {"id": "b", "rewards": [0.0, 1.0], "logs": [{"question": two}, {"question": two}]},
            {"id": "c", "rewards": [0.0, 0.0], "logs": [cut_off, cut_off]}]
    folder = tmp_path / "env"
    folder.mkdir()
    folder.joinpath("trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder.joinpath("result.json").write_text(json.dumps({"results": {"env": {"metrics": {"env/correct": 0.5, "reward": 0.5}}}}))
    metrics = bench.held_out_metrics(tmp_path, bench.trajectory_rows(tmp_path))
    assert metrics["reward"] == 0.5 and metrics["operations/1"] == 1.0 and metrics["operations/2"] == 0.5


@pytest.mark.parametrize(("words", "message"), [(["--lr-scale", "0"], "--lr-scale must be > 0"), (["--warmup", "-1"], "--warmup must be >= 0"),
                                                (["--eval-samples", "0"], "--eval-samples must be >= 1")])
def test_bad_options_are_refused_before_anything_runs(tmp_path, words, message):
    proc = subprocess.run([sys.executable, str(SCRIPT), *words, "--work", str(tmp_path / "w")], capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr
    assert not (tmp_path / "w").exists()
