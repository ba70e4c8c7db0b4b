"""Datums to packed micro-batches, and the model's logprobs of their target tokens.

`examples` checks each Datum and keeps its arrays; `packing.plan_batch` lays
the sequences out; `MicroBatchTensors.build` makes one micro-batch's tensors.
A row may hold several sequences: each gets position ids counting from 0 and
attends only within itself (per-sequence causal attention, see `attention`;
flash attention's variable-length kernels; or the block-diagonal causal mask
transformers builds from the position ids), so every sequence gets the logits
it would get alone. Slots after a row's last sequence are padding: they carry on its
positions, which a causal mask keeps out of every real token's view, and
`mask` zeroes them in every loss.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cookbook_cli.engines.local.attention import is_packed, segment_kwargs
from cookbook_cli.engines.local.packing import CostModel, MicroBatch, plan_batch
from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch
    from tinker import types


@dataclass
class Example:
    tokens: np.ndarray  # (n,) int64
    targets: np.ndarray  # (n,) or (n, k) int64
    inputs: dict[str, np.ndarray]  # float loss inputs shaped like targets

    @property
    def length(self) -> int:
        return int(self.tokens.shape[0])


def _tokens(datum: types.Datum, i: int) -> list[int]:
    try:
        return datum.model_input.to_ints()
    except ValueError:
        raise CookbookError(f"datum {i}: the local engine takes token inputs only (EncodedTextChunk)") from None


def _array(datum: types.Datum, key: str) -> np.ndarray:
    return np.asarray(datum.loss_fn_inputs[key].to_numpy())


def examples(data: Sequence[types.Datum], keys: Sequence[str], required: Sequence[str], vocab_size: int) -> list[Example]:
    """Checked arrays of each datum; `keys` are the float loss inputs to carry along."""
    if not data:
        raise CookbookError("no data: forward/forward_backward need at least one Datum")
    out: list[Example] = []
    width: int | None = None
    present: dict[str, int] = {k: 0 for k in keys}
    for i, datum in enumerate(data):
        tokens = _tokens(datum, i)
        if not tokens:
            raise CookbookError(f"datum {i} has an empty model_input")
        if "target_tokens" not in datum.loss_fn_inputs:
            raise CookbookError(f"datum {i} lacks loss_fn_inputs['target_tokens']")
        tgt = _array(datum, "target_tokens").astype(np.int64)
        if tgt.ndim not in (1, 2) or tgt.shape[0] != len(tokens):
            raise CookbookError(
                f"datum {i}: target_tokens has shape {list(tgt.shape)}, expected [{len(tokens)}] or "
                f"[{len(tokens)}, k] (one row per model_input token)"
            )
        this_width = tgt.shape[1] if tgt.ndim == 2 else 0
        if width is not None and this_width != width:
            raise CookbookError(f"datum {i}: target_tokens shape {list(tgt.shape)} differs in rank or width from datum 0")
        width = this_width
        if tgt.size and (tgt.min() < 0 or tgt.max() >= vocab_size):
            raise CookbookError(f"datum {i}: target_tokens outside the vocabulary [0, {vocab_size})")
        if max(tokens) >= vocab_size or min(tokens) < 0:
            raise CookbookError(f"datum {i}: model_input tokens outside the vocabulary [0, {vocab_size})")
        inputs: dict[str, np.ndarray] = {}
        for k in keys:
            if k not in datum.loss_fn_inputs:
                if k in required:
                    raise CookbookError(f"datum {i} lacks loss_fn_inputs[{k!r}]")
                continue
            arr = _array(datum, k)
            if arr.shape != tgt.shape:
                raise CookbookError(f"datum {i}: {k} has shape {list(arr.shape)} but target_tokens has {list(tgt.shape)}")
            inputs[k] = arr
            present[k] += 1
        out.append(Example(np.asarray(tokens, dtype=np.int64), tgt, inputs))
    for k, n in present.items():
        if 0 < n < len(out):  # optional key present on some data only: a default would be ambiguous
            raise CookbookError(f"loss_fn_inputs[{k!r}] is on some data but not all; give it on every datum or none")
    return out


def cost_model(model: Any) -> CostModel:
    """Relative cost of a slot and of an attention score for `model` (see packing)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    embed = model.get_input_embeddings()
    unembed = model.get_output_embeddings()
    params = sum(p.numel() for p in model.parameters())
    per_slot = float(params - embed.weight.numel())
    if unembed is not None and unembed.weight is embed.weight:
        per_slot += unembed.weight.numel()  # tied: the output projection still runs per slot
    layers = getattr(config, "num_hidden_layers", 0) or 0
    heads = getattr(config, "num_attention_heads", 0) or 0
    head_dim = getattr(config, "head_dim", None) or ((getattr(config, "hidden_size", 0) or 0) // max(heads, 1))
    per_score = 2.0 * layers * heads * head_dim  # q.k and the weighted sum of v
    impl = str(getattr(config, "_attn_implementation", "") or "")
    # cookbook_packed computes scores within each sequence unless the model
    # attends through a sliding window (then it falls back to the masked sdpa).
    varlen = "flash" in impl or (is_packed(model) and getattr(config, "sliding_window", None) is None)
    return CostModel(per_slot=per_slot, per_score=per_score, varlen=varlen)


@functools.cache
def packs_by_position_ids() -> bool:
    """Whether this transformers builds block-diagonal masks from position ids
    that restart (`masking_utils.find_packed_sequence_indices`); older versions
    would let packed sequences attend to each other, so every layout falls back
    to `pad` there."""
    import importlib

    try:
        masking = importlib.import_module("transformers.masking_utils")
    except ImportError:
        return False
    return hasattr(masking, "find_packed_sequence_indices")


def plan(model: Any, batch: Sequence[Example], mode: str, max_tokens: int) -> list[MicroBatch]:
    max_row = getattr(model.config, "max_position_embeddings", None)
    if not packs_by_position_ids():
        mode = "pad"
    return plan_batch([e.length for e in batch], mode, max_tokens, cost_model(model), max_row)


@dataclass
class MicroBatchTensors:
    layout: MicroBatch
    input_ids: torch.Tensor  # (R, W) long
    position_ids: torch.Tensor  # (R, W) long
    targets: torch.Tensor  # (R, W) or (R, W, K) long
    mask: torch.Tensor  # same shape as targets, float: 1 at real positions
    inputs: dict[str, torch.Tensor]  # loss inputs laid out like targets, float

    @classmethod
    def build(
        cls,
        layout: MicroBatch,
        batch: Sequence[Example],
        keys: Sequence[str],
        device: torch.device,
        float_dtype: torch.dtype,
    ) -> MicroBatchTensors:
        import torch

        R, W = layout.rows, layout.width
        tail = batch[layout.placements[0].index].targets.shape[1:]
        ids = np.zeros((R, W), dtype=np.int64)
        pos = np.tile(np.arange(W, dtype=np.int64), (R, 1))
        tgt = np.zeros((R, W, *tail), dtype=np.int64)
        mask = np.zeros((R, W, *tail), dtype=np.float64)
        extras = {k: np.zeros((R, W, *tail), dtype=np.float64) for k in keys if k in batch[layout.placements[0].index].inputs}
        for p in sorted(layout.placements, key=lambda p: (p.row, p.start)):
            e = batch[p.index]
            s = slice(p.start, p.start + p.length)
            ids[p.row, s] = e.tokens
            tgt[p.row, s] = e.targets
            mask[p.row, s] = 1.0
            for k, arr in extras.items():
                arr[p.row, s] = e.inputs[k]
            # Positions count from 0 in each sequence; the padding after a row's
            # last sequence (written last) carries on its positions.
            pos[p.row, p.start :] = np.arange(W - p.start)
        return cls(
            layout=layout,
            input_ids=torch.from_numpy(ids).to(device),
            position_ids=torch.from_numpy(pos).to(device),
            targets=torch.from_numpy(tgt).to(device),
            mask=torch.from_numpy(mask).to(device=device, dtype=float_dtype),
            inputs={k: torch.from_numpy(v).to(device=device, dtype=float_dtype) for k, v in extras.items()},
        )

    def scatter(self, values: torch.Tensor, out: list[Any]) -> None:
        """Each sequence's slice of a (R, W, ...) tensor, detached and on the CPU
        (one copy from the device), into `out[index]`."""
        host = values.detach().to("cpu")
        for p in self.layout.placements:
            out[p.index] = host[p.row, p.start : p.start + p.length]

    def gather(self, per_example: Sequence[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """The inverse of `scatter`: CPU per-sequence tensors laid out like `like`."""
        import torch

        grid = torch.zeros(like.shape, dtype=like.dtype)
        for p in self.layout.placements:
            grid[p.row, p.start : p.start + p.length] = per_example[p.index]
        return grid.to(like.device)


def target_logprobs(model: Any, mb: MicroBatchTensors, float_dtype: torch.dtype) -> torch.Tensor:
    """Logprob of each target token, shaped like `mb.targets`; differentiable
    when grad is enabled. Computed from upcast logits (never in bf16)."""
    import torch.nn.functional as F

    logits = model(input_ids=mb.input_ids, position_ids=mb.position_ids, use_cache=False, **segment_kwargs(model, mb.layout)).logits
    logits = logits.to(float_dtype)
    R, W, V = logits.shape
    if mb.targets.dim() == 2:
        # Fused log-softmax + gather: no second (R, W, V) tensor.
        return -F.cross_entropy(logits.reshape(R * W, V), mb.targets.reshape(R * W), reduction="none").view(R, W)
    return logits.log_softmax(-1).gather(-1, mb.targets)


def to_host(values: Sequence[torch.Tensor], batch: Sequence[Example]) -> list[np.ndarray]:
    """Per-datum float32 arrays shaped like each datum's targets (from CPU tensors)."""
    return [v.float().numpy().reshape(e.targets.shape) for v, e in zip(values, batch, strict=True)]
