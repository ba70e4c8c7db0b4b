"""Fixtures of the distillation tests; helpers live in distill_helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sl"))  # sl_helpers: run_cli, cli_env

from distill_helpers import WORDS, prompt, write_jsonl  # noqa: E402


@pytest.fixture(scope="session")
def toy_model() -> str:
    """A tiny random model over the 34-token toy tokenizer (fast on CPU)."""
    from cookbook_cli.rl.toy_tokenizer import toy_model

    return toy_model("tiny")


@pytest.fixture
def prompt_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl", [prompt(w) for w in WORDS])
