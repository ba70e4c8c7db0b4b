"""Completion logprob sums, and the DPO loss as a custom loss for `forward_backward_custom`
(so it runs on every engine; the other preference losses are in `losses`).

For pair i, with S the sum of the completion tokens' logprobs (the datum's
`weights` mark them) under the policy and S_ref under the frozen reference:

    h_i  = (S_chosen - S_chosen_ref) - (S_rejected - S_rejected_ref)
    loss = mean_i -log sigmoid(beta * h_i)

The data are the pairs interleaved, `[chosen_0, rejected_0, chosen_1, ...]`
(`PreferenceBatch.datums`), and `reference_sums[i] = (S_chosen_ref,
S_rejected_ref)` of pair i, computed once from the reference model's logprobs
of the same datums (`pair_logprob_sums`). The loss is computed in float64.
Gradient with respect to a completion token's logprob: -sigma(-beta h) beta w / P
on the chosen side and +sigma(-beta h) beta w / P on the rejected side
(P pairs, w the token's weight).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch
    from tinker import types

DEFAULT_BETA = 0.1

DPOLossFn = Callable[["list[types.Datum]", "list[torch.Tensor]"], "tuple[torch.Tensor, dict[str, float]]"]


def datum_weights(datum: types.Datum) -> Any:
    """The datum's `weights` input, which marks its completion tokens."""
    if "weights" not in datum.loss_fn_inputs:
        raise CookbookError("a DPO datum needs loss_fn_inputs['weights'] marking its completion tokens")
    return datum.loss_fn_inputs["weights"]


def completion_logprob_sum(logprobs: Any, weights: Any) -> Any:
    """S = sum of weight * logprob over a datum's target tokens.

    Tensors in, a float64 tensor out (differentiable); anything else (lists,
    numpy arrays, TensorData) in, a float out."""
    import numpy as np

    if hasattr(logprobs, "requires_grad"):
        import torch

        w = weights.to_torch() if hasattr(weights, "to_torch") else torch.as_tensor(np.asarray(weights))
        lp = logprobs.to(torch.float64).reshape(-1)
        w = w.to(device=lp.device, dtype=torch.float64).reshape(-1)
        _check_lengths(lp.shape[0], w.shape[0])
        return (lp * w).sum()
    lp_np = np.asarray(logprobs.to_numpy() if hasattr(logprobs, "to_numpy") else logprobs, dtype=np.float64).reshape(-1)
    w_np = np.asarray(weights.to_numpy() if hasattr(weights, "to_numpy") else weights, dtype=np.float64).reshape(-1)
    _check_lengths(lp_np.shape[0], w_np.shape[0])
    return float((lp_np * w_np).sum())


def _check_lengths(n_lp: int, n_w: int) -> None:
    if n_lp != n_w:
        raise CookbookError(f"{n_lp} logprobs but {n_w} weights; they must be of the same datum")


def pair_logprob_sums(data: Sequence[types.Datum], logprobs: Sequence[Any]) -> list[tuple[float, float]]:
    """(S_chosen, S_rejected) per pair of interleaved `data`, from per-datum
    target logprobs: a `forward` output's `[o["logprobs"] for o in out.loss_fn_outputs]`,
    or arrays. This is how the reference sums are made."""
    if len(data) % 2:
        raise CookbookError(f"DPO data are (chosen, rejected) pairs; got an odd number of datums ({len(data)})")
    if len(logprobs) != len(data):
        raise CookbookError(f"{len(logprobs)} logprob arrays for {len(data)} datums")
    sums = [completion_logprob_sum(lp, datum_weights(d)) for d, lp in zip(data, logprobs, strict=True)]
    return [(float(sums[i]), float(sums[i + 1])) for i in range(0, len(sums), 2)]


def target_logprobs_from_prompt_logprobs(prompt_logprobs: Sequence[float | None]) -> list[float]:
    """A sampling client's `compute_logprobs(full sequence)` has one entry per
    token, None for the first; a datum's targets are tokens 1..n, so its target
    logprobs are the rest. (For a reference served by a sampling client.)"""
    rest = list(prompt_logprobs[1:])
    if any(x is None for x in rest):
        raise CookbookError("compute_logprobs returned None past the first token")
    return [float(x) for x in rest]  # type: ignore[arg-type]


def dpo_loss_fn(reference_sums: Sequence[tuple[float, float]], beta: float = DEFAULT_BETA) -> DPOLossFn:
    """The DPO loss over interleaved (chosen, rejected) data, for
    `training_client.forward_backward_custom(batch.datums, dpo_loss_fn(ref, beta))`:
    the registered `sigmoid` preference loss without label smoothing.

    Metrics: dpo_loss, accuracy (share of pairs with h > 0), chosen_reward and
    rejected_reward (mean of beta * the log-ratio to the reference), margin
    (mean of their difference, beta * h) and num_pairs."""
    from cookbook_cli.preference.losses import BUILTIN_PREFERENCE_LOSSES

    if not beta > 0:
        raise CookbookError(f"DPO beta must be > 0, got {beta}")
    if not reference_sums:
        raise CookbookError("the DPO loss needs at least one (chosen, rejected) pair")
    return BUILTIN_PREFERENCE_LOSSES["sigmoid"].custom_loss("sigmoid", {"beta": beta}, reference_sums)
