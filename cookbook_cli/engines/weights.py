"""What an engine hands `cookbook export`: a checkpoint's sampler weights as
files in the Hugging Face formats, and its base model as a transformers model.

An engine that can do this registers `hf_weights=fn` (see `default_plugins.engines`),
where `fn(sampler_path) -> HFWeights` takes the path `save_weights_for_sampler`
returned. An engine without it (its weights live on a service) cannot be
exported by cookbook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HFWeights:
    folder: Path  # a peft adapter folder (LoRA) or a Hugging Face model folder (full fine-tuning)
    lora: bool
    base_model: str  # the name the engine trained from
    #: The base model, float32 on the CPU, and the dtype its weights are stored in:
    #: `load_base() -> (transformers model, torch.dtype)`.
    load_base: Callable[[], tuple[Any, Any]]
