"""Base models for the local engine: a folder, the HF cache, or a random shape.

- a folder holding config.json (and tokenizer.json), a .gguf file (converted
  once to a folder) or a registered name (see `cookbook_cli.models.inputs`):
  `from_pretrained(folder)`;
- a Hub repo id (owner/name): `from_pretrained(repo_id)` from the Hugging Face
  cache (downloading unless HF_HUB_OFFLINE is set);
- `random:<shape>:<tokenizer>` (see `shapes`): a Llama-architecture model with
  the tokenizer's vocabulary, initialised from a fixed seed so that every client
  built from the same name starts from the same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.engines.local.attention import use_packed_attention
from cookbook_cli.engines.local.shapes import is_random_model, parse_random_model
from cookbook_cli.errors import CookbookError, first_line

if TYPE_CHECKING:
    import torch

    from cookbook_cli.tokenizers import Tokenizer

RANDOM_INIT_SEED = 0


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: Tokenizer
    base_model: str
    eos_token_ids: list[int] = field(default_factory=list)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def max_positions(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _eos_ids(model: Any, tokenizer: Tokenizer) -> list[int]:
    ids: list[int] = []
    gen = getattr(model, "generation_config", None)
    for source in (getattr(gen, "eos_token_id", None), getattr(model.config, "eos_token_id", None), tokenizer.eos_token_id):
        for tid in source if isinstance(source, (list, tuple)) else [source]:
            if isinstance(tid, int) and tid not in ids:
                ids.append(tid)
    return ids


def build_random_model(base_model: str, attention: str | None = None) -> tuple[torch.nn.Module, Tokenizer]:
    """The float32 CPU model named `random:<shape>:<tokenizer>`, seeded;
    `attention` names a transformers attention implementation (default sdpa)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from cookbook_cli.models import tokenizer_source
    from cookbook_cli.tokenizers import get_tokenizer

    spec = parse_random_model(base_model)
    tokenizer = get_tokenizer(tokenizer_source(spec.tokenizer))
    config = LlamaConfig(
        **spec.shape.llama_config_kwargs(tokenizer.vocab_size),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        **({"attn_implementation": attention} if attention else {}),
    )
    # fork_rng: seed the init without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        with torch.device("cpu"):
            model = LlamaForCausalLM(config)
    return model, tokenizer


def _load_pretrained(source: str, dtype: torch.dtype, cache_dir: str | None, attention: str | None) -> Any:
    from transformers import AutoModelForCausalLM

    from cookbook_cli.engines.local.quiet import no_hf_progress_bars

    extra = {"attn_implementation": attention} if attention else {}
    try:
        with no_hf_progress_bars():  # its "Loading weights" bar leaked into eval, chat, distill and sample
            return AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, cache_dir=cache_dir, local_files_only=_offline() or Path(source).is_dir(), **extra
            )
    except (OSError, ValueError) as e:
        raise CookbookError(f"cannot load model {source!r}: {first_line(e)}") from None


def _hub_tokenizer(repo_id: str, cache_dir: str | None) -> Tokenizer:
    from huggingface_hub import hf_hub_download

    from cookbook_cli.tokenizers import get_tokenizer

    try:
        path = hf_hub_download(repo_id, "tokenizer.json", cache_dir=cache_dir, local_files_only=_offline())
    except Exception as e:  # noqa: BLE001 - hub errors of every kind become one line
        raise CookbookError(f"model {repo_id!r} has no tokenizer.json in the Hugging Face cache: {type(e).__name__}") from None
    for extra in ("tokenizer_config.json", "chat_template.jinja"):
        try:
            hf_hub_download(repo_id, extra, cache_dir=cache_dir, local_files_only=_offline())
        except Exception:  # noqa: BLE001 - optional companions
            pass
    return get_tokenizer(path)


def load_base_model(
    base_model: str, dtype: torch.dtype, cache_dir: str | None = None, attention: str | None = None
) -> LoadedModel:
    """Load `base_model` on the CPU in `dtype`; the caller moves it to its device.
    `attention` picks the attention implementation (see `Precision.attention`)."""
    from cookbook_cli.tokenizers import get_tokenizer

    if not isinstance(base_model, str) or not base_model.strip():
        raise CookbookError("base_model must be a non-empty string")
    if is_random_model(base_model):
        model, tokenizer = build_random_model(base_model, attention)
        model = model.to(dtype)
    else:
        from cookbook_cli.models import resolve_model_input

        resolved = resolve_model_input(base_model)
        if resolved.folder is not None:
            model = _load_pretrained(str(resolved.folder), dtype, cache_dir, attention)
            tokenizer = get_tokenizer(str(resolved.folder))
        elif base_model.count("/") == 1:
            model = _load_pretrained(base_model, dtype, cache_dir, attention)
            tokenizer = _hub_tokenizer(base_model, cache_dir)
        else:
            raise CookbookError(
                f"unknown model {base_model!r}: give a folder with config.json, a .gguf file, a registered name "
                "(cookbook models list), a Hugging Face repo id (owner/name), or random:<shape>:<tokenizer> such as random:tiny:llama3"
            )
    model.eval()  # no dropout anywhere: forward and forward_backward see the same function
    if attention is None:
        use_packed_attention(model)
    return LoadedModel(model, tokenizer, base_model, _eos_ids(model, tokenizer))
