"""The recipe contract through the CLI: the README's resume line takes every
setting from the run's config.json, a finished run says how to extend it, a
--max-steps beyond the data says so once, and inputs that can never train
are refused before anything loads (issue 24 item 3): exit code 1, one line,
no traceback, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

runner = CliRunner()


def cookbook(*args: str, **env: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"COLUMNS": "300", **env})


def steps_of(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if not json.loads(line).get("final")]


def test_the_readme_resume_line_resumes_a_finished_run_and_says_how_to_extend_it(chats, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cookbook("train", "sl", "--dataset", "my_chats.jsonl", "--log-dir", "runs/mine", "--batch-size", "6")
    assert first.exit_code == 0, first.output
    assert steps_of(tmp_path / "runs/mine") == [0, 1, 2]

    again = cookbook("train", "sl", "--log-dir", "runs/mine", "--if-exists", "resume")  # the README's line, as written
    assert again.exit_code == 0, again.output
    assert "already finished its 3 steps" in again.output and "--max-steps N (or --epochs N)" in again.output
    assert "Done: 0 steps" not in again.output and "n/a" not in again.output

    more = cookbook("train", "sl", "--log-dir", "runs/mine", "--if-exists", "resume", "--epochs", "2")
    assert more.exit_code == 0, more.output
    assert "Done: 3 steps" in more.output and steps_of(tmp_path / "runs/mine") == [0, 1, 2, 3, 4, 5]


def test_resume_refuses_a_setting_the_recipe_does_not_let_change(chats, tmp_path):
    run = tmp_path / "run"
    assert cookbook("train", "sl", "--dataset", str(chats), "--log-dir", str(run), "--max-steps", "1").exit_code == 0
    result = cookbook("runs", "resume", str(run), "--batch-size", "2")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "batch_size: 8 -> 2" in result.output and "may change only" in result.output and "max_steps" in result.output


def test_max_steps_beyond_the_data_is_said_once_with_the_option_that_gives_more(chats, tmp_path):
    result = cookbook("train", "sl", "--dataset", str(chats), "--log-dir", str(tmp_path / "run"), "--batch-size", "6", "--max-steps", "60")
    assert result.exit_code == 0, result.output
    said = [ln for ln in result.output.splitlines() if "--max-steps 60" in ln]
    assert len(said) == 1 and "the 3 steps the data gives" in said[0] and "--epochs gives more" in said[0]


REFUSALS = [
    # (recipe args, fragments of the one line)
    (["sl", "seed=1", "seed=2"], ["seed is given twice (seed=1 and seed=2)"]),
    (["sl", "--batch-size", "2", "batch_size=4"], ["--batch-size 2 and batch_size=4 both set batch_size"]),
    (["sl", "-b", "2", "batch_size=4"], ["--batch-size 2 and batch_size=4"]),
    (["sl", "--lr", "0.1", "learning_rate=0.2"], ["--learning-rate 0.1 and learning_rate=0.2 both set learning_rate"]),
    (["sl", "--model", "random:tiny:llama3", "--lora-rank", "100000"], ["lora_rank=100000 is larger than the model's hidden size (64)"]),
    (["dpo", "--model", "random:tiny:llama3", "--lora-rank", "65"], ["lora_rank=65 is larger than the model's hidden size (64)"]),
    (["rl", "--env", "first_token", "loss_fn_config.bogus=1"], ["loss 'importance_sampling' has no config key 'bogus'"]),
    (["rl", "--env", "first_token", "--loss", "ppo", "loss_fn_config.clip=1"], ["loss 'ppo' has no config key 'clip'"]),
    (["distill", "--teacher", "random:tiny:llama3", "loss_fn_config.bogus=1"], ["has no config key 'bogus'"]),
    (["sl", "--engine", "tinker"], ["engine 'tinker' needs TINKER_API_KEY", "--engine local"]),
    (["rl", "--env", "first_token", "--engine", "tinker"], ["needs TINKER_API_KEY"]),
    (["sl", "--if-exists", "maybe"], ["--if-exists value 'maybe'"]),
    (["distill", "--teacher", "random:tiny:llama3", "--prompts", "a.jsonl", "--dataset", "b.jsonl"], ["--prompts and --dataset both name the prompts"]),
]


@pytest.mark.parametrize(("args", "fragments"), REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_refused_before_anything_loads(args, fragments, tmp_path, monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    run = tmp_path / "run"
    result = cookbook("train", args[0], "--log-dir", str(run), *args[1:])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert not run.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_python_api_resolves_dataset_files_as_the_cli_does(chats):
    from cookbook_cli.config import make_config
    from cookbook_cli.recipes.sl import SLConfig

    config = make_config(SLConfig, {}, [f"dataset={chats}"])
    assert type(config.dataset).__name__ == "ConversationsBuilder" and config.dataset.path == str(chats)
