"""Recipes run the evaluators of their config every eval_every steps and log
them as test/<name>/<metric> (against the engine stand-in: no model)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.data.builders import ConversationsBuilder
from cookbook_cli.engines.standin import StandInService
from cookbook_cli.run.options import RunOptions


def rows(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


def test_sl_logs_evaluators_at_eval_steps_and_at_the_end(tmp_path):
    from cookbook_cli.recipes.sl import SLConfig, train

    cfg = SLConfig(
        dataset=ConversationsBuilder(test_size=2), log_dir=str(tmp_path / "sl"), batch_size=2, max_steps=4, eval_every=2, save_every=0,
        evaluators=["arithmetic max_examples=3 max_tokens=2", "nll max_examples=2"],
    )
    result = train(cfg, RunOptions(service=StandInService(latency=0.0), progress=False, on_log=lambda m: None))
    logged = rows(result.log_dir)
    with_eval = [r["step"] for r in logged if "test/arithmetic/accuracy" in r]
    assert with_eval == [0, 2, 4] and logged[-1]["final"] is True
    for r in logged:
        if r["step"] in with_eval:
            assert 0.0 <= r["test/arithmetic/accuracy"] <= 1.0 and r["test/nll/nll"] > 0 and "test/nll/bits_per_byte" in r
    assert "test_nll" in logged[0]  # the recipe's own test NLL is still there
    assert json.loads((result.log_dir / "config.json").read_text())["evaluators"] == cfg.evaluators


def test_rl_logs_evaluators(tmp_path):
    from cookbook_cli.recipes.rl import RLConfig, train
    from cookbook_cli.rl.arithmetic import ArithmeticBuilder

    cfg = RLConfig(
        env=ArithmeticBuilder(), log_dir=str(tmp_path / "rl"), max_steps=3, group_size=2, groups_per_batch=2, max_tokens=3,
        save_every=0, eval_every=2, num_groups_to_log=0, evaluators=["env env=arithmetic max_groups=2 num_samples=2 pass_k=1,2"],
    )
    result = train(cfg, RunOptions(service=StandInService(latency=0.0, sample_latency=0.0), progress=False, on_log=lambda m: None))
    logged = rows(result.log_dir)
    assert [r["step"] for r in logged if "test/env/reward" in r] == [0, 2, 3]
    assert logged[-1]["final"] is True and "test/env/pass@2" in logged[-1]


def test_a_bad_evaluator_fails_before_the_run_opens(tmp_path):
    log_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "sl", "--log-dir", str(log_dir), "evaluators=arithmetc"])
    assert result.exit_code == 1 and "unknown evaluator 'arithmetc'" in result.output and "Traceback" not in result.output
    assert not log_dir.exists()
    result = CliRunner().invoke(app, ["train", "rl", "--env", "arithmetic", "--log-dir", str(log_dir), "evaluators.0=arithmetic pass_k=2"])
    assert result.exit_code == 1 and "pass_k=2" in result.output and not log_dir.exists()
