"""Where the Hugging Face cache keeps a Hub model, read without the network."""

from __future__ import annotations

import os
from pathlib import Path


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def hf_cache_model_dir(name: str) -> Path:
    """Where the Hugging Face cache keeps repo `name` (its snapshots/ hold the files)."""
    return hf_cache_dir() / f"models--{name.replace('/', '--')}"


def cached_snapshot(name: str) -> Path | None:
    """A snapshot folder of Hub repo `name` in the cache that holds a config.json."""
    snapshots = hf_cache_model_dir(name) / "snapshots"
    try:
        return next((s for s in sorted(snapshots.iterdir()) if (s / "config.json").is_file()), None)
    except OSError:  # not cached, or a name too long for a path
        return None


def is_local_model(name: str) -> bool:
    """A model folder, or a model in the Hugging Face cache (no network)."""
    try:
        return Path(name).expanduser().is_dir() or hf_cache_model_dir(name).is_dir()
    except OSError:  # a name too long for a path, say
        return False
