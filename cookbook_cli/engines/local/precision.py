"""Device and numeric precision for the local engine.

Defaults: CUDA when present, else CPU; bf16 compute on CUDA, float32 on CPU.
With bf16 compute, LoRA keeps the frozen base in bf16 and the adapter in
float32, while full fine-tuning keeps float32 master weights and runs the
forward pass under bf16 autocast, so small Adam updates are never rounded away.
An explicit float32 or float64 runs everything in that dtype (float64 is for
reference checks in tests).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch

DTYPES = ("bfloat16", "float16", "float32", "float64")


def select_device(device: str | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise CookbookError(f"unknown device {device!r}: use cpu, cuda or cuda:<index>") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CookbookError(f"device {device!r} was asked for but CUDA is not available here; use device='cpu'")
    return dev


@dataclass(frozen=True)
class Precision:
    device: torch.device
    compute: torch.dtype

    @classmethod
    def choose(cls, device: str | None, dtype: str | None) -> Precision:
        import torch

        dev = select_device(device)
        if dtype is None:
            dtype = "bfloat16" if dev.type == "cuda" else "float32"
        if dtype not in DTYPES:
            raise CookbookError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        return cls(dev, getattr(torch, dtype))

    @property
    def low_precision(self) -> bool:
        import torch

        return self.compute in (torch.bfloat16, torch.float16)

    def base_weight_dtype(self, full_finetune: bool) -> torch.dtype:
        """Weights that train stay at least float32; frozen ones may be low precision."""
        import torch

        return torch.float32 if (self.low_precision and full_finetune) else self.compute

    def attention(self, weight_dtype: torch.dtype) -> str | None:
        """The attention kernel to load models with: flash attention 2 on CUDA for
        half-precision weights when flash-attn is installed (its variable-length
        kernels let packed training rows skip scores across sequences), else
        transformers' default (sdpa)."""
        import importlib.util

        import torch

        half = weight_dtype in (torch.bfloat16, torch.float16)
        if self.device.type == "cuda" and half and importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
        return None

    def float_dtype(self) -> torch.dtype:
        """Dtype of logprobs and loss arithmetic: float32 unless running in float64."""
        import torch

        return torch.float64 if self.compute == torch.float64 else torch.float32

    def autocast(self, model: Any) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast around a forward pass of float32 weights, else nothing."""
        import torch

        weight = next(model.parameters())
        if self.low_precision and weight.dtype == torch.float32:
            return torch.autocast(self.device.type, dtype=self.compute)
        return contextlib.nullcontext()

    def describe(self) -> str:
        return f"{self.device.type}/{str(self.compute).removeprefix('torch.')}"
