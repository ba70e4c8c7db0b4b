"""LoRA through peft, choosing layers the way Tinker's flags do.

`train_attn` adapts the linear layers under attention blocks, `train_mlp` those
under MLP / expert blocks, `train_unembed` the output embedding. Rank 0 means
full fine-tuning: every parameter trains and peft is not involved.
"""

from __future__ import annotations

import copy
import functools
import warnings
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch

LORA_ALPHA = 32  # fixed alpha, so the adapter's scale is alpha / rank as in Tinker's LoRA
_ATTN = ("attn", "attention")
_MLP = ("mlp", "ffn", "feed_forward", "experts")


def target_modules(model: torch.nn.Module, train_attn: bool, train_mlp: bool, train_unembed: bool) -> list[str]:
    unembed = model.get_output_embeddings()
    names: list[str] = []
    for name, module in model.named_modules():
        if type(module).__name__ not in ("Linear", "Conv1D"):
            continue
        parts = name.lower().split(".")
        if module is unembed:
            wanted = train_unembed
        elif any(p in _ATTN or p.endswith("attn") for p in parts):
            wanted = train_attn
        elif any(p in _MLP for p in parts):
            wanted = train_mlp
        else:
            wanted = False
        if wanted:
            names.append(name)
    return names


def apply_lora(
    model: torch.nn.Module, rank: int, seed: int, train_attn: bool, train_mlp: bool, train_unembed: bool
) -> torch.nn.Module:
    import peft
    import torch

    if rank < 1:
        raise CookbookError(f"LoRA rank must be at least 1 (0 means full fine-tuning), got {rank}")
    targets = target_modules(model, train_attn, train_mlp, train_unembed)
    if not targets:
        raise CookbookError("no layers to adapt: enable at least one of train_attn, train_mlp, train_unembed")
    config = peft.LoraConfig(r=rank, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=targets)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        # The adapter is never merged into tied embeddings, so peft's tying warning does not apply.
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        wrapped = peft.get_peft_model(model, config, autocast_adapter_dtype=True)
    weight_dtype = next(iter(model.parameters())).dtype
    if weight_dtype == torch.float64:
        for p in wrapped.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.float64)
    fuse_adapters(wrapped)
    return wrapped


def fuse_adapters(model: torch.nn.Module) -> int:
    """Give every peft LoRA Linear of `model` the fused forward (`FusedLoraLinear`);
    how many it changed. Parameters, names and saved adapters stay peft's."""
    from peft.tuners.lora.layer import Linear

    fused = _fused_class()
    changed = 0
    for module in model.modules():
        if type(module) is Linear:
            module.__class__ = fused
            changed += 1
    return changed


@functools.cache
def _fused_class() -> type:
    """peft's LoRA Linear with `base(x) + scale * B(A(x))` as one addmm.

    peft computes the adapter's output, multiplies it by the scale and adds it
    to the base output: two more passes over a (tokens x out_features) tensor
    in the forward pass and one in the backward, which for the output
    embedding (49,152 columns in SmolLM2) cost as much as its low-rank matmuls.
    addmm_ accumulates `scale * h @ B.T` into the base output inside the matmul
    (in place: the base matmul's backward does not need its output) and applies
    the scale to the rank-wide gradients only; over a half-precision base the
    adapter runs in that dtype (no activation copies). The same sum as
    peft's, rounded differently (float tolerance); anything but the plain case
    (dropout, merged or several adapters, DoRA and other variants) is peft's own
    forward."""
    import torch
    from peft.tuners.lora.layer import Linear

    class FusedLoraLinear(Linear):
        def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            active = self.active_adapters
            name = active[0] if len(active) == 1 else None
            if (
                args
                or kwargs
                or name not in self.lora_A
                or self.disable_adapters
                or self.merged
                or name in self.lora_variant
                or not isinstance(self.lora_dropout[name], torch.nn.Identity)
                or self.lora_A[name].bias is not None
                or self.lora_B[name].bias is not None
            ):
                return super().forward(x, *args, **kwargs)
            base = self.base_layer
            a, b = self.lora_A[name], self.lora_B[name]
            rows = x.reshape(-1, x.shape[-1])
            if type(base) is torch.nn.Linear:
                # A 2-D output of its own (not a view), which addmm_ may update in place.
                result = torch.nn.functional.linear(rows, base.weight, base.bias)
            else:
                result = base(x).reshape(-1, base.out_features)
            # A half-precision base (bf16 compute) runs the adapter in its dtype,
            # as autocast would: the float32 adapter is cast (rank-wide, cheap)
            # instead of the activations (tokens-wide, in and out, both passes),
            # and the gradients reach the float32 weights through the cast.
            dtype = result.dtype if rows.dtype == result.dtype else a.weight.dtype
            h = torch.nn.functional.linear(rows.to(dtype), a.weight.to(dtype))
            total = result.to(dtype).addmm_(h, b.weight.t().to(dtype), alpha=self.scaling[name])
            return total.view(*x.shape[:-1], total.shape[-1]).to(result.dtype)

    return FusedLoraLinear


def snapshot(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy for sampling that shares every frozen tensor with `model`.

    Only trainable tensors are copied (the adapter under LoRA, everything under
    full fine-tuning), so a LoRA snapshot costs the adapter's memory only."""
    memo = {id(p): p for p in model.parameters() if not p.requires_grad}
    copied = copy.deepcopy(model, memo)
    for p in copied.parameters():
        p.requires_grad_(False)
        p.grad = None
    return copied
