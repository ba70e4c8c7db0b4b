"""A recipe added by a plugin package (the one `cookbook plugins new recipe`
writes, with two config fields of its own) is a `cookbook train` command like
the built-in ones: listed with its plugin, its fields as options, trained on
the local engine, resumed, and refused in one line when a field is wrong."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cookbook_cli.cli.main import app

MODEL = "random:tiny:llama3"

runner = CliRunner()


def cookbook(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_train_help_lists_every_recipe_with_its_plugin(recipe_plugin):
    result = cookbook("train", "--help")
    assert result.exit_code == 0, result.output
    for name in ("sl", "rl", "dpo", "distill"):
        assert name in result.output
    text = " ".join(result.output.split())  # help text wraps to the terminal
    assert f"{recipe_plugin} Fine-tune on the last assistant turn" in text and "[cookbook-acme-lastturn]" in text
    assert "sl Supervised fine-tuning on conversations. [cookbook-cli]" in text


def test_its_help_shows_both_fields_and_the_run_options(recipe_plugin):
    result = cookbook("train", recipe_plugin, "--help")
    assert result.exit_code == 0, result.output
    for option in ("--path", "--train-on-what", "--lr", "--max-steps", "--epochs", "--lora-rank", "--if-exists", "--dry-run"):
        assert option in result.output, option


def test_trains_two_steps_resumes_and_extends(recipe_plugin, chats, tmp_path):
    run = tmp_path / "run"
    first = cookbook("train", recipe_plugin, "--model", MODEL, "--path", str(chats), "--batch-size", "4", "--max-steps", "2", "--log-dir", str(run))
    assert first.exit_code == 0, first.output
    assert "Done: 2 steps" in first.output
    # resumed with only the run directory: every other setting comes from config.json
    again = cookbook("runs", "resume", str(run), "--max-steps", "3")
    assert again.exit_code == 0, again.output
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2]
    assert json.loads((run / "config.json").read_text())["path"] == str(chats)


def test_a_wrong_field_is_refused_in_one_line(recipe_plugin, tmp_path):
    result = cookbook("train", recipe_plugin, "--model", MODEL, "--train-on-what", "everything", "--log-dir", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error:") and "everything" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
