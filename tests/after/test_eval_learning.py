"""The shipped offline benchmark measures training: `cookbook eval arithmetic`
before and after a short `train rl --env arithmetic` run, on a tiny random
model over the 46-token toy tokenizer with digits.

With one sampled token per answer (max_tokens=1) and operands 0..4 the model
learns, within ten steps, to answer with a digit that is often the sum (from
random weights it almost never samples the right digit first)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.run.options import RunOptions

pytest.importorskip("torch")


def accuracy(*args):
    result = CliRunner().invoke(app, ["eval", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])["results"]["arithmetic"]["metrics"]["accuracy"]


def test_the_arithmetic_benchmark_score_rises_after_rl(tmp_path):
    from cookbook_cli.recipes.rl import RLConfig, train
    from cookbook_cli.rl.arithmetic import ArithmeticBuilder
    from cookbook_cli.rl.toy_tokenizer import toy_model

    model = toy_model("tiny", digits=True)
    before = accuracy("--model", model, "--renderer", "role_colon", "--out", str(tmp_path / "before"), "arithmetic", "max_tokens=1")
    cfg = RLConfig(
        env=ArithmeticBuilder(max_operand=4), model=model, renderer="role_colon", log_dir=str(tmp_path / "run"),
        learning_rate=3e-2, lora_rank=0, group_size=16, groups_per_batch=4, max_tokens=1, max_steps=10,
        save_every=0, num_groups_to_log=0, engine_options={"device": "cpu"}, evaluators=["arithmetic max_tokens=1"], eval_every=0,
    )
    result = train(cfg, RunOptions(progress=False, on_log=lambda m: None))
    after = accuracy("--run", str(result.log_dir))  # no evaluator named: the run's own
    logged = [json.loads(line) for line in (result.log_dir / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["final"] and logged[-1]["test/arithmetic/accuracy"] == after  # the recipe measured the same
    print(f"arithmetic accuracy {before:.2f} -> {after:.2f}; rewards {[round(r, 2) for r in result.rewards()]}")
    assert before <= 0.04 and after >= before + 0.12
