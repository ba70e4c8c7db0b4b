"""Per-sequence attention for packed training rows, on kernels without a
variable-length mode (the CPU, or CUDA without flash-attn).

A packed row holds several sequences, each attending causally within itself.
transformers' sdpa path expresses that as a (rows, 1, width, width) boolean
mask, so the kernel computes every score of the row and cannot skip the
masked blocks: a row of 8 sequences of 50 tokens costs 64 times one
sequence's scores where 8 would do, and the masked kernel is also slower per
score than the causal one. `cookbook_packed` instead runs sdpa with
`is_causal=True` on each sequence's slice of the row (grouped-query heads
shared, not copied), which is the flash-attention-varlen computation written
with the kernels every device has. Slots after a row's last sequence (padding)
attend as the continuation of that sequence, exactly as the block-diagonal
mask had them.

The segments come from the micro-batch layout (`segments_of`) and reach the
attention through the model's keyword arguments. A call without them (sampling
with a KV cache, a padded batch) is plain sdpa with transformers' own mask, so a
model switched to `cookbook_packed` behaves as sdpa everywhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from cookbook_cli.engines.local.packing import MicroBatch

PACKED_ATTENTION = "cookbook_packed"
SEGMENTS_KWARG = "cookbook_segments"  # per row, the lengths of its sequences (the last one taking the padding)


def segments_of(layout: MicroBatch) -> tuple[tuple[int, ...], ...]:
    """Each row's sequence lengths in row order; the last covers the row's tail."""
    rows: list[list[tuple[int, int]]] = [[] for _ in range(layout.rows)]
    for p in layout.placements:
        rows[p.row].append((p.start, p.length))
    out = []
    for row in rows:
        row.sort()
        lengths = [n for _, n in row]
        lengths[-1] = layout.width - row[-1][0]
        out.append(tuple(lengths))
    return tuple(out)


def _packed_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    segments = kwargs.pop(SEGMENTS_KWARG, None)
    if segments is None or not _plain_causal(module, kwargs):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    dtype = query.dtype
    if query.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        # The CPU's half-precision sdpa kernels take 3x float32's time on
        # sequences this short (SmolLM2, bf16, 8 x 50 tokens); float32 is
        # also the more exact of the two.
        query, key, value = query.float(), key.float(), value.float()
    rows = []
    for r, lengths in enumerate(segments):
        q, k, v = (t[r : r + 1].split(lengths, dim=2) for t in (query, key, value))
        outs = [
            F.scaled_dot_product_attention(qs, ks, vs, dropout_p=dropout, scale=scaling, is_causal=True, enable_gqa=gqa)
            for qs, ks, vs in zip(q, k, v, strict=True)
        ]
        rows.append(outs[0] if len(outs) == 1 else torch.cat(outs, dim=2))
    out = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous().to(dtype), None  # (rows, width, heads, head_dim), as sdpa_attention_forward returns


def _plain_causal(module: Any, kwargs: dict[str, Any]) -> bool:
    """Whether the layer's attention is plain causal softmax attention, which
    per-sequence causal sdpa computes exactly (no sliding window, softcap,
    sinks or position bias)."""
    if not kwargs.get("is_causal", getattr(module, "is_causal", True)):
        return False
    if getattr(module, "sliding_window", None) is not None:
        return False
    return all(kwargs.get(k) is None for k in ("sliding_window", "softcap", "s_aux", "position_bias"))


@functools.cache
def _registered() -> bool:
    """Register `cookbook_packed` with transformers (its attention and, for calls
    without segments, sdpa's mask); False where transformers is too old to."""
    try:
        from transformers import AttentionInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: F401 - the fallback
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(PACKED_ATTENTION, _packed_attention)
    AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)
    return True


def use_packed_attention(model: Any) -> bool:
    """Switch a model that runs transformers' sdpa attention to `cookbook_packed`;
    whether it did. Other kernels (flash attention's own varlen path, eager) and
    models that cannot change their attention are left as they are."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(model, "set_attn_implementation"):
        return False
    if not type(model).is_backend_compatible() or not _registered():
        return False
    try:
        model.set_attn_implementation(PACKED_ATTENTION)
    except (ValueError, ImportError, NotImplementedError):
        return False
    return getattr(model.config, "_attn_implementation", None) == PACKED_ATTENTION


def is_packed(model: Any) -> bool:
    """Whether `model`'s forward takes per-row segments (see the module doc)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) == PACKED_ATTENTION


def segment_kwargs(model: Any, layout: MicroBatch) -> dict[str, Sequence[Sequence[int]]]:
    """The keyword argument that gives `model` the layout's segments, if it takes them."""
    return {SEGMENTS_KWARG: segments_of(layout)} if is_packed(model) else {}
