"""`cookbook train sl` on bad input: one line `Error: ...`, exit status 1, no
traceback, and nothing trained (these all fail before a model loads)."""

from __future__ import annotations

import json

import pytest
from sl_helpers import conv, run_cli, write_jsonl
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

runner = CliRunner()


def fails(args: list[str], *expected: str) -> str:
    result = runner.invoke(app, ["train", "sl", *args])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def good(tmp_path):
    return write_jsonl(tmp_path / "good.jsonl", [conv(f"q{i}", f"a{i}") for i in range(10)])


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [conv("q", "a"), conv("q", "a"), '{"messages": [oops]}'])
    fails(["--dataset", str(path), "--log-dir", str(tmp_path / "run")], f"{path}:3: malformed JSON")
    assert not (tmp_path / "run").exists()


def test_line_without_messages(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [conv("q", "a"), {"conversation": []}])
    fails(["--dataset", str(path), "--log-dir", str(tmp_path / "run")], f"{path}:2: missing field 'messages'")


def test_unknown_role(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "robot", "content": "beep"}]}])
    fails(["--dataset", str(path), "--log-dir", str(tmp_path / "run")], f"{path}:1: messages[0]: field 'role'", "'robot'")


def test_empty_dataset(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    fails(["--dataset", str(path), "--log-dir", str(tmp_path / "run")], "holds no conversations")


def test_missing_dataset_file(tmp_path):
    fails(["--dataset", str(tmp_path / "nope.jsonl")], "does not exist")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--dataset", "no_robot"], ("unknown dataset 'no_robot'", "Did you mean 'no_robots'?", "cookbook datasets list")),
        (["--renderer", "lama3"], ("unknown renderer 'lama3'", "Did you mean 'llama3'?")),
        (["--engine", "lokal"], ("unknown engine 'lokal'", "Did you mean 'local'?", "tinker")),
        (["dataset=no_robot"], ("unknown dataset 'no_robot'", "Did you mean 'no_robots'?")),
        (["adam.bta1=0.5"], ("unknown config field 'adam.bta1'", "Did you mean 'adam.beta1'?")),
        (["--if-exists", "maybe"], ("unknown --if-exists value 'maybe'",)),
        (["lr_schedule=cosin"], ("Did you mean 'cosine'?",)),
        (["stray"], ("unexpected argument 'stray'", "key=value")),
        (["--batch-size", "0"], ("batch_size must be at least 1",)),
    ],
)
def test_unknown_names_get_suggestions(args, expected):
    fails(args, *expected)


def test_log_dir_that_is_a_file(tmp_path, good):
    target = tmp_path / "run"
    target.write_text("x")
    fails(["--dataset", str(good), "--log-dir", str(target)], "is a file; choose another --log-dir")


def test_existing_run_without_if_exists_names_the_flags(tmp_path, good):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"engine": "local"}))
    (run / "cookbook-run.json").write_text(json.dumps({"format": "cookbook-run/1", "entries": ["config.json"]}))
    fails(["--dataset", str(good), "--log-dir", str(run)], "already holds a run", "--if-exists resume", "--if-exists overwrite")


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", ["{not json"])
    proc = run_cli(["train", "sl", "--dataset", str(path), "--log-dir", str(tmp_path / "run")], timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: {path}:1: malformed JSON (Expecting property name enclosed in double quotes at column 2)"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_dry_run_prints_the_resolved_config():
    result = runner.invoke(app, ["train", "sl", "--renderer", "llama3", "--dry-run", "--lr", "0.001", "adam.beta2=0.99", "dataset.test_size=5"])
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    assert cfg["model"] == "random:tiny:meta-llama/Llama-3.2-1B-Instruct" and cfg["renderer"] == "llama3"
    assert cfg["learning_rate"] == 0.001 and cfg["adam"]["beta2"] == 0.99
    assert cfg["dataset"] == {"name": "conversations", "path": None, "test_size": 5.0}
    assert cfg["log_dir"].startswith("runs/sl-sample-")


def test_defaults_follow_the_engine_and_the_model():
    def dry(*args: str) -> dict:
        result = runner.invoke(app, ["train", "sl", "--dry-run", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    tinker = dry("--engine", "tinker", "--renderer", "llama3")
    # the llama3 family's rule (tinker-cookbook's get_lr): 5e-4 * (2000 / hidden size) ** 0.781 for LoRA
    assert tinker["model"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert tinker["learning_rate"] == pytest.approx(5e-4 * (2000 / 2048) ** 0.781)
    assert dry("--engine", "tinker", "--renderer", "role_colon")["model"] == "meta-llama/Llama-3.2-1B"
    assert dry("--model", "meta-llama/Llama-3.1-8B-Instruct")["renderer"] == "llama3"
    assert dry("--model", "meta-llama/Llama-3.1-8B")["renderer"] == "role_colon"
    assert dry("--model", "random:small:llama3")["renderer"] == "llama3"
    full = dry("--model", "meta-llama/Llama-3.1-8B-Instruct", "--lora-rank", "0")["learning_rate"]
    assert full == pytest.approx(5e-5 * (2000 / 4096) ** 0.781)
    jsonl = dry("--dataset", "examples/conversations.jsonl")["dataset"]
    assert jsonl == {"name": "conversations", "path": "examples/conversations.jsonl", "test_size": 0.1}


def test_help_lists_options_and_config_words():
    result = runner.invoke(app, ["train", "sl", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("--renderer", "--if-exists", "--dry-run", "adam.beta1", "dataset.test_size", "lr_schedule", "engine_options"):
        assert text in result.output, text


def test_tinker_without_a_key_fails_in_one_line_and_leaves_no_run(tmp_path, good, monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    fails(["--engine", "tinker", "--dataset", str(good), "--log-dir", str(tmp_path / "run")], "TINKER_API_KEY", "--engine local")
    assert not (tmp_path / "run").exists()


def test_a_model_that_cannot_load_leaves_no_run(tmp_path, good):
    result = runner.invoke(app, ["train", "sl", "--model", "random:huge:llama3", "--dataset", str(good), "--log-dir", str(tmp_path / "run")])
    assert result.exit_code == 1 and "Error: unknown model shape 'huge'" in result.output
    assert not (tmp_path / "run").exists()
