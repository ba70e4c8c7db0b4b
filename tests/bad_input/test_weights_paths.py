"""Weights named by a path, refused before anything loads, through the CLI:
each case one line, no traceback, no log directory left behind.

| case | options |
| --- | --- |
| a local-looking path that does not exist (never tried on the Hub) | --reference, --init-from, --teacher, kl_reference_model= |
| a checkpoint or run of another base model than the policy | --reference, --init-from |
| a model of another vocabulary than the policy (the two config.json) | --reference, kl_reference_model= |
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

runner = CliRunner()

MISSING = ["./no/such/model", "~/no-such-cookbook-model", "{tmp}/absent", "existing/absent", "models/a/b", "absent.gguf",
           "org/weights.safetensors", "runs/no-such-run"]
OPTIONS = {
    "--reference": ["train", "dpo", "--reference"],
    "--init-from": ["train", "dpo", "--init-from"],
    "teacher": ["train", "distill", "--teacher"],
    "kl_reference_model": ["train", "rl", "--env", "arithmetic", "kl_penalty_coef=0.1"],
}


def refused(args: list[str], log_dir: Path) -> str:
    result = runner.invoke(app, [*args, "--log-dir", str(log_dir)])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert not log_dir.exists()
    return lines[0]


def with_value(option: str, value: str) -> list[str]:
    args = OPTIONS[option]
    return [*args, f"kl_reference_model={value}"] if option == "kl_reference_model" else [*args, value]


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("path", MISSING)
def test_a_local_path_that_does_not_exist_is_refused_at_once(tmp_path, monkeypatch, option, path):
    (tmp_path / "existing").mkdir()  # `existing/absent` names a folder that exists: a path, never a Hub id
    monkeypatch.chdir(tmp_path)
    value = path.format(tmp=tmp_path)
    line = refused(with_value(option, value), tmp_path / "run")
    assert f"{option} {value!r} does not exist" in line, line


def fake_run(path: Path, model: str) -> Path:
    """A finished run of `model` (its weights are never loaded: the refusal comes first)."""
    (path / "weights" / "final-000002").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"engine": "local", "model": model, "renderer": "llama3"}))
    record = {"step": 2, "epoch": 0, "batch": 2, "name": "final-000002", "final": True, "state_path": "weights/final-000002"}
    (path / "checkpoints.jsonl").write_text(json.dumps(record) + "\n")
    (path / "metrics.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
    return path


@pytest.mark.parametrize("option", ["--reference", "--init-from"])
@pytest.mark.parametrize("inside", [False, True])
def test_a_checkpoint_of_another_base_model_is_refused(tmp_path, option, inside):
    run = fake_run(tmp_path / "sft", "random:small:llama3")
    given = run / "weights" / "final-000002" if inside else run
    line = refused(["train", "dpo", "--model", "random:tiny:llama3", option, str(given)], tmp_path / "run")
    assert f"{option} {str(given)!r} was trained from base model 'random:small:llama3', not this run's 'random:tiny:llama3'" in line
    assert "--model random:small:llama3" in line


def hf_folder(path: Path, vocab_size: int) -> Path:
    """A model folder's config.json and tokenizer (its weights are never loaded: the refusal comes first)."""
    import shutil

    from cookbook_cli.testing import tiny_tokenizer_path

    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": vocab_size, "hidden_size": 64}))
    shutil.copy(tiny_tokenizer_path() / "tokenizer.json", path / "tokenizer.json")
    return path


@pytest.mark.parametrize("option", ["--reference", "kl_reference_model"])
def test_a_model_of_another_vocabulary_is_refused_from_the_config_files(tmp_path, option):
    policy, other = hf_folder(tmp_path / "policy", 128256), hf_folder(tmp_path / "other", 32000)
    args = OPTIONS[option][:2] + ["--model", str(policy), "--renderer", "llama3", *OPTIONS[option][2:]]
    args = [*args, f"kl_reference_model={other}"] if option == "kl_reference_model" else [*args, str(other)]
    line = refused(args, tmp_path / "run")
    assert f"{option} {str(other)!r} has a vocabulary of 32000 tokens and the model {str(policy)!r} 128256" in line
