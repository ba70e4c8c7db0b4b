"""Fixtures for the model-input tests; the tiny GGUF writer lives in tiny_gguf."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests import their helpers from tiny_gguf (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_gguf import TinySource, build_tiny_source, write_tiny_gguf  # noqa: E402


@pytest.fixture(autouse=True)
def cookbook_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test converts into its own cache directory."""
    cache = tmp_path / "cookbook-cache"
    monkeypatch.setenv("COOKBOOK_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_source() -> TinySource:
    return build_tiny_source()


@pytest.fixture
def write_gguf(tiny_source: TinySource) -> Callable[..., Path]:
    """write_gguf(path, architecture="llama", tokenizer=True, chat_template=True) -> path"""
    return lambda path, **options: write_tiny_gguf(tiny_source, path, **options)
