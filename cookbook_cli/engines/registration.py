"""Core's engines and losses, registered through the same hooks as any plugin.

An engine is registered as `factory(**options) -> ServiceClient`, with extras
that tell recipes what they need to know without naming the engine:

- `status()`: says, without importing anything heavy, whether it can run here;
- `checkpoints_in_run_dir`: the factory takes `checkpoint_dir` and keeps a run's
  checkpoints inside its log directory;
- `default_model(renderer)`: the model a recipe uses when none is given;
- `model_spec(model)`: for names only this engine understands (the local
  engine's `random:<shape>:<tokenizer>`), a `ModelSpec` (tokenizer, label for
  run names, trained from scratch); None for any other name;
- `small_models`: runs the small models an env suggests for offline runs
  (`RLDatasetBuilder.local_defaults`);
- `hf_weights(sampler_path)`: the checkpoint's files and base model for
  `cookbook export` (an `engines.weights.HFWeights`).

Built-in losses carry `builtin=True`: the engine computes them from a
name in `forward_backward`; every other registered loss is a function run
through `forward_backward_custom`.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.plugins.spec import Register, hookimpl


def create_local(**options: Any) -> Any:
    from cookbook_cli.engines.local.memory import prefer_huge_pages

    prefer_huge_pages()  # before the engine's first torch allocation
    from cookbook_cli.engines.local.service import LocalServiceClient

    return LocalServiceClient(**options)


def create_tinker(**options: Any) -> Any:
    from cookbook_cli.engines.tinker_engine import TinkerServiceClient

    return TinkerServiceClient(**options)


def _local_default_model(renderer: str) -> str:
    from cookbook_cli.models import tokenizer_for_renderer

    return f"random:tiny:{tokenizer_for_renderer(renderer)}"


def _local_model_spec(model: str) -> Any:
    from cookbook_cli.engines.local.shapes import is_random_model, parse_random_model
    from cookbook_cli.models import ModelSpec

    if not is_random_model(model):
        return None
    spec = parse_random_model(model)  # malformed names fail here, in one line
    return ModelSpec(tokenizer=spec.tokenizer, label=spec.shape_name, from_scratch=True)


def _local_hf_weights(sampler_path: str) -> Any:
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


def _local_status() -> str:
    missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(missing)} (pip install 'cookbook-cli[local]')" if missing else "ready"


def _tinker_status() -> str:
    return "ready" if os.environ.get("TINKER_API_KEY") else "needs TINKER_API_KEY"


@hookimpl(specname="register_engines")
def register_builtin_engines(register: Register) -> None:
    register(
        "local",
        create_local,
        "PyTorch + transformers (+ peft for LoRA) on this machine: CUDA if present, else CPU; "
        "real models from a folder or the HF cache, or random:<shape>:<tokenizer>.",
        status=_local_status,
        checkpoints_in_run_dir=True,
        default_model=_local_default_model,
        model_spec=_local_model_spec,
        small_models=True,
        hf_weights=_local_hf_weights,
    )
    register(
        "tinker",
        create_tinker,
        "The Tinker training service through the tinker SDK (remote, LoRA on large models); needs TINKER_API_KEY.",
        status=_tinker_status,
    )


@hookimpl(specname="register_loss_functions")
def register_builtin_losses(register: Register) -> None:
    from cookbook_cli.engines.losses import BUILTIN_LOSSES

    for name, loss in BUILTIN_LOSSES.items():
        register(name, loss, loss.description, builtin=True)
