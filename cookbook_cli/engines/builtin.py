"""Core's two engines as registered objects: their factories and the extras
they declare (see `default_plugins.engines` for what each extra means)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from cookbook_cli.errors import CookbookError


def create_local(**options: Any) -> Any:
    from cookbook_cli.engines.local.memory import prefer_huge_pages

    prefer_huge_pages()  # before the engine's first torch allocation
    from cookbook_cli.engines.local.service import LocalServiceClient

    return LocalServiceClient(**options)


def create_tinker(**options: Any) -> Any:
    from cookbook_cli.engines.tinker_engine import TinkerServiceClient

    return TinkerServiceClient(**options)


def local_default_model(renderer: str) -> str:
    from cookbook_cli.models import tokenizer_for_renderer

    return f"random:tiny:{tokenizer_for_renderer(renderer)}"


def local_model_spec(model: str) -> Any:
    from cookbook_cli.engines.local.shapes import is_random_model, parse_random_model
    from cookbook_cli.models import ModelSpec

    if not is_random_model(model):
        return None
    spec = parse_random_model(model)  # malformed names fail here, in one line
    return ModelSpec(tokenizer=spec.tokenizer, label=spec.shape_name, from_scratch=True)


def local_hf_weights(sampler_path: str) -> Any:
    from pathlib import Path

    from cookbook_cli.engines.local import checkpoints
    from cookbook_cli.engines.weights import HFWeights

    folder = checkpoints.resolve(Path.cwd(), sampler_path, checkpoints.SAMPLER_KIND)
    meta = checkpoints.read_meta(folder)
    if meta.get("kind") != "sampler":
        raise CookbookError(f"{str(folder)!r} holds training state, not sampler weights")
    base = str(meta["base_model"])

    def load_base() -> tuple[Any, Any]:
        import torch

        from cookbook_cli.engines.local.models import load_base_model
        from cookbook_cli.engines.local.shapes import is_random_model

        stored = torch.float32
        if not is_random_model(base):
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(base, local_files_only=True)
            dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
            stored = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or torch.float32)
        return load_base_model(base, torch.float32).model, stored

    return HFWeights(folder, bool(meta.get("lora_rank")), base, load_base)


def local_status() -> str:
    missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)} (pip install 'cookbook-cli[local]')" if missing else "ready"


def tinker_status() -> str:
    return "ready" if os.environ.get("TINKER_API_KEY") else "needs TINKER_API_KEY"
