"""Forward and backward passes over a batch laid out in packed micro-batches.

Every built-in loss is a sum of per-token terms, so each micro-batch's
backward is run as soon as its forward is done and gradients accumulate: the
memory held at once is one micro-batch's. A custom loss sees the logprobs of
the whole batch at once; over several micro-batches they are computed without
a graph first, the loss's gradients with respect to them are taken, and each
micro-batch is then run again with a graph to push those gradients into the
weights (the same gradient, one extra forward pass per micro-batch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cookbook_cli.engines.local.batch import Example, MicroBatchTensors, target_logprobs
from cookbook_cli.engines.local.packing import MicroBatch
from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch

    from cookbook_cli.engines.local.precision import Precision
    from cookbook_cli.engines.losses import BuiltinLoss


def _tensors(mb: MicroBatch, batch: Sequence[Example], keys: Sequence[str], precision: Precision) -> MicroBatchTensors:
    return MicroBatchTensors.build(mb, batch, keys, precision.device, precision.float_dtype())


def _logprobs(model: Any, t: MicroBatchTensors, precision: Precision) -> torch.Tensor:
    with precision.autocast(model):
        return target_logprobs(model, t, precision.float_dtype())


def builtin(
    model: Any,
    precision: Precision,
    batch: Sequence[Example],
    plan: Sequence[MicroBatch],
    loss: BuiltinLoss,
    cfg: Mapping[str, float],
    backward: bool,
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
    """Per-example logprobs and elementwise losses, and the summed loss."""
    import torch

    keys = (*loss.required_inputs, *loss.optional_inputs)
    lps: list[Any] = [None] * len(batch)
    els: list[Any] = [None] * len(batch)
    total = 0.0
    with torch.set_grad_enabled(backward):
        for mb in plan:
            t = _tensors(mb, batch, keys, precision)
            lp = _logprobs(model, t, precision)
            elementwise = loss.elementwise(lp, t.inputs, cfg) * t.mask
            mb_total = elementwise.sum()
            if backward:
                mb_total.backward()
            total += float(mb_total.detach())
            t.scatter(lp, lps)
            t.scatter(elementwise, els)
    return lps, els, total


CustomFn = Callable[[list[Any], list["torch.Tensor"]], Any]


def custom(
    model: Any,
    precision: Precision,
    batch: Sequence[Example],
    plan: Sequence[MicroBatch],
    data: list[Any],
    fn: CustomFn,
) -> tuple[list[torch.Tensor], torch.Tensor, Mapping[str, Any] | None]:
    """Run `fn(data, logprobs)` and backpropagate its loss; returns the logprobs,
    the loss and its metrics."""
    import torch

    single = len(plan) == 1
    lps: list[Any] = [None] * len(batch)
    kept: list[tuple[MicroBatchTensors, torch.Tensor]] = []
    with torch.set_grad_enabled(single):
        for mb in plan:
            t = _tensors(mb, batch, (), precision)
            lp = _logprobs(model, t, precision)
            t.scatter(lp, lps)
            kept.append((t, lp))
    # The loss sees CPU leaf tensors, as on Tinker, so one function runs on
    # every engine; their gradients are then pushed through the model.
    leaves = [lp.reshape(e.targets.shape).clone().requires_grad_(True) for lp, e in zip(lps, batch, strict=True)]
    with torch.enable_grad():
        result = fn(data, leaves)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.Tensor)):
            name = getattr(fn, "__name__", repr(fn))
            raise CookbookError(f"custom loss {name} must return (loss tensor, metrics dict), got {type(result).__name__}")
        loss, metrics = result
        # A loss that is constant in the logprobs (e.g. a batch whose every
        # advantage is zero, short-circuited) is a valid step with zero gradient.
        if not loss.requires_grad:
            return lps, loss, metrics
        loss.sum().backward()
        grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
        grads = [g.reshape(lp.shape) for g, lp in zip(grads, lps, strict=True)]
        for t, lp in kept:
            if not single:  # recompute this micro-batch with a graph, one at a time
                lp = _logprobs(model, t, precision)
            (lp * t.gather(grads, lp.detach())).sum().backward()
    return lps, loss, metrics


def score(model: Any, precision: Precision, sequences: Sequence[Sequence[int]], mode: str, max_tokens: int) -> list[list[float | None]]:
    """log p(token_i | tokens_<i) of each sequence (None for the first token),
    all sequences packed into as few forward passes as `max_tokens` allows."""
    import numpy as np
    import torch

    from cookbook_cli.engines.local.batch import plan as make_plan

    batch = [Example(np.asarray(s[:-1], dtype=np.int64), np.asarray(s[1:], dtype=np.int64), {}) for s in sequences if len(s) > 1]
    out: list[Any] = [None] * len(batch)
    if batch:
        with torch.no_grad():
            for mb in make_plan(model, batch, mode, max_tokens):
                t = _tensors(mb, batch, (), precision)
                t.scatter(_logprobs(model, t, precision), out)
    it = iter(out)
    return [[None, *next(it).tolist()] if len(s) > 1 else [None] for s in sequences]
