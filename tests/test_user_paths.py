"""Where users go first, through the CLI: the dataset listings, `runs show` on
an RL run and on a run whose files are torn or missing, and the message for a
renderer whose tokenizer cannot be guessed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.run.options import RunOptions

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_datasets_list_shows_both_kinds_and_info_shows_fields():
    rows = {r["name"]: r for r in json.loads(invoke("datasets", "list", "--json").output)}
    assert rows["conversations"]["kind"] == "supervised" and rows["comparisons"]["kind"] == "preference"
    assert {"hh_rlhf", "ultrafeedback", "helpsteer3", "no_robots", "hf"} <= set(rows)
    info = invoke("datasets", "info", "comparisons")
    assert info.exit_code == 0 and "test_size" in info.output, info.output
    unknown = invoke("datasets", "info", "comparisns")
    assert unknown.exit_code == 1 and "Did you mean 'comparisons'" in unknown.output


def test_runs_show_an_rl_run_and_its_reward_curve(tmp_path):
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.recipes.rl import RLConfig, train
    from cookbook_cli.rl.first_token import FirstTokenBuilder
    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    cfg = RLConfig(env=FirstTokenBuilder(target="A"), log_dir=str(tmp_path / "rl"), max_steps=3, group_size=2,
                   groups_per_batch=2, save_every=0, num_groups_to_log=1)
    train(cfg, RunOptions(service=StandInService(get_tokenizer(toy_tokenizer_path()), sample_latency=0.0, train_latency=0.0), progress=False, on_log=lambda m: None))
    shown = invoke("runs", "show", str(tmp_path / "rl"))
    assert shown.exit_code == 0 and "mean reward" in shown.output and "steps logged   3" in shown.output, shown.output
    as_json = json.loads(invoke("runs", "show", str(tmp_path / "rl"), "--json").output)
    assert as_json["steps"] == 3 and as_json["config"]["env"]["name"] == "first_token"


def test_runs_show_a_torn_or_empty_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"engine": "local", "model": "m"}))
    (run / "cookbook-run.json").write_text(json.dumps({"format": "cookbook-run/1", "entries": ["config.json"]}))
    shown = invoke("runs", "show", str(run))
    assert shown.exit_code == 0 and "no steps logged yet" in shown.output, shown.output
    (run / "metrics.jsonl").write_text('{"step": 0, "loss": 2.0}\n{"step": 1, "lo')  # killed mid-append
    shown = invoke("runs", "show", str(run))
    assert shown.exit_code == 0 and "steps logged   1" in shown.output, shown.output
    missing = invoke("runs", "show", str(tmp_path / "nope"))
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_a_renderer_without_a_model_family_names_the_option_that_exists(tmp_path):
    result = invoke("train", "sl", "--renderer", "hf_template", "--log-dir", str(tmp_path / "run"))
    assert result.exit_code == 1 and "pass --model" in result.output and "--tokenizer" not in result.output, result.output
    assert not (tmp_path / "run").exists()
