"""Preference losses: registered objects that `train dpo --loss-type` (paired
rows) and `train kto --loss-type` (unpaired rows) choose from, and that a
plugin adds to through `register_loss_functions`:

    register("my_loss", PreferenceLoss(my_fn, "one line", hyperparameters={"beta": Hyperparameter(0.1, low=0, low_open=True)}),
             "one line", kind="preference")

A batch is rows of two sequences each, interleaved in the data
(`[a_0, b_0, a_1, b_1, ...]`): for paired data (a, b) = (chosen, rejected),
for unpaired data (KTO) a is the row's completion and b the same prompt with
another row's completion (the mismatched pair of the KL estimate). The loss
sees per-row float64 tensors (`RowSums`): the policy's completion logprob
sums (differentiable), the reference's (only when `needs_reference`; a
reference-free loss gets none and the recipe never runs a reference pass), and
the completion lengths (weight sums). It returns each row's loss, averaged over
the batch here, and its metrics.

The formulas, with S a completion's logprob sum, |y| its length, and for
reference losses h = (S_c - S_c_ref) - (S_r - S_r_ref):

- sigmoid (DPO, Rafailov et al. 2023; cDPO when label_smoothing e > 0, Mitchell 2023):
  -(1 - e) log s(beta h) - e log s(-beta h)
- ipo (Azar et al. 2023, on sums as in the paper): (h - 1 / (2 beta))^2
- hinge (SLiC-HF, Zhao et al. 2023): max(0, 1 - beta h)
- robust (rDPO, Chowdhury et al. 2024, e the assumed label-flip rate):
  ((1 - e) (-log s(beta h)) - e (-log s(-beta h))) / (1 - 2e)
- simpo (Meng et al. 2024, no reference): -log s(beta (S_c/|c| - S_r/|r|) - gamma)
- orpo (Hong et al. 2024, no reference), with a = S/|y| and odds log a - log(1 - e^a):
  -a_c + lambda (-log s(logodds_c - logodds_r))
- kto (Ethayarajh et al. 2024, unpaired), with r = S - S_ref and z = max(0, mean
  of r over the batch's mismatched pairs), detached:
  lambda_D (1 - s(beta (r - z))) on desirable rows, lambda_U (1 - s(beta (z - r))) on undesirable ones
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch
    from tinker import types

PAIRED = "preference"  # the registry kind of losses over (chosen, rejected) pairs: `train dpo`
UNPAIRED = "preference-unpaired"  # over rows labelled desirable or not: `train kto`


@dataclass(frozen=True)
class Hyperparameter:
    """A loss's number: its default and the range it must lie in (None: open)."""

    default: float
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is refused
    high_open: bool = True  # high itself is refused
    doc: str = ""

    def check(self, loss: str, name: str, value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CookbookError(f"loss_type {loss!r}: {name} must be a finite number, got {value!r}")
        below = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        above = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        if below or above:
            raise CookbookError(f"loss_type {loss!r}: {name} must be {self.range()}, got {value}")
        return float(value)

    def range(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts) or "any number"


@dataclass
class RowSums:
    """One batch's rows as float64 tensors of shape (rows,): `chosen`/`rejected`
    are the policy's logprob sums of a row's two sequences (differentiable),
    `*_ref` the reference's (None for a reference-free loss), `*_len` the
    completion lengths; `desirable` (unpaired rows only) 1.0 or 0.0 per row."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_len: torch.Tensor
    rejected_len: torch.Tensor
    chosen_ref: torch.Tensor | None = None
    rejected_ref: torch.Tensor | None = None
    desirable: torch.Tensor | None = None

    def log_ratios(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(S_c - S_c_ref, S_r - S_r_ref)."""
        if self.chosen_ref is None or self.rejected_ref is None:
            raise CookbookError("this loss needs the reference's logprob sums; declare needs_reference=True")
        return self.chosen - self.chosen_ref, self.rejected - self.rejected_ref


#: fn(rows, hyperparameters) -> (per-row losses, metrics)
RowLossFn = Callable[[RowSums, Mapping[str, float]], "tuple[torch.Tensor, dict[str, float]]"]
CustomLossFn = Callable[["list[types.Datum]", "list[torch.Tensor]"], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass(frozen=True)
class PreferenceLoss:
    """A registered preference loss. `fn` maps a batch's `RowSums` and the
    resolved hyperparameters to per-row losses (averaged into the step's loss)
    and metrics. `needs_reference=False`: the recipe computes no reference
    logprobs. `unpaired`: rows are KTO's (completion, mismatched completion)
    with a desirable label, not (chosen, rejected) pairs."""

    fn: RowLossFn
    description: str
    hyperparameters: Mapping[str, Hyperparameter] = field(default_factory=dict)
    needs_reference: bool = True
    unpaired: bool = False

    @property
    def kind(self) -> str:
        return UNPAIRED if self.unpaired else PAIRED

    @property
    def metric(self) -> str:
        """The key of the step's loss in metrics.jsonl."""
        return "kto_loss" if self.unpaired else "dpo_loss"

    @property
    def config_defaults(self) -> dict[str, float]:
        return {k: h.default for k, h in self.hyperparameters.items()}

    def resolve(self, name: str, given: Mapping[str, Any], how: Callable[[str], str] = lambda k: k) -> dict[str, float]:
        """Every hyperparameter: `given` values (checked against their range)
        over the defaults. A given name the loss does not take is refused
        (`how(key)` is how the user wrote it, e.g. `--label-smoothing`)."""
        for key in given:
            if key not in self.hyperparameters:
                takes = ", ".join(how(k) for k in self.hyperparameters) or "nothing"
                raise CookbookError(f"loss_type {name!r} takes no {how(key)} (it takes: {takes})")
        return {k: h.check(name, how(k), given[k]) if k in given else h.default for k, h in self.hyperparameters.items()}

    def custom_loss(
        self, name: str, hyperparameters: Mapping[str, float], reference_sums: Sequence[tuple[float, float]] | None = None,
        desirable: Sequence[bool] | None = None,
    ) -> CustomLossFn:
        """This loss for `forward_backward_custom(batch.datums, fn)`:
        `reference_sums[i]` is row i's (S_a_ref, S_b_ref) when it needs a
        reference; `desirable[i]` row i's label for an unpaired loss."""
        params = self.resolve(name, hyperparameters)
        if self.needs_reference and reference_sums is None:
            raise CookbookError(f"loss_type {name!r} needs the reference's logprob sums of each row")
        if self.unpaired and desirable is None:
            raise CookbookError(f"loss_type {name!r} is over unpaired rows: pass whether each row is desirable")
        reference = [(float(a), float(b)) for a, b in reference_sums] if self.needs_reference and reference_sums is not None else None
        labels = [bool(d) for d in desirable] if desirable is not None else None

        def preference_loss(data: list[types.Datum], logprobs_list: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            import torch

            from cookbook_cli.preference.loss import completion_logprob_sum, datum_weights

            if len(data) % 2 or not data:
                raise CookbookError(f"preference data are rows of two datums ([a_0, b_0, a_1, ...]); got {len(data)} datums")
            if len(logprobs_list) != len(data):
                raise CookbookError(f"{len(logprobs_list)} logprob tensors for {len(data)} datums")
            rows = len(data) // 2
            for what, given in (("reference sums", reference), ("desirable labels", labels)):
                if given is not None and len(given) != rows:
                    raise CookbookError(
                        f"loss_type {name!r} built for {len(given)} pairs got {len(data)} datums; pass the batch's datums "
                        f"([a_0, b_0, a_1, ...]) with the {what} of the same rows"
                    )
            sums = torch.stack([completion_logprob_sum(lp, datum_weights(d)) for d, lp in zip(data, logprobs_list, strict=True)])
            lengths = torch.tensor([float(datum_weights(d).to_numpy().sum()) for d in data], dtype=torch.float64, device=sums.device)
            ref = torch.tensor(reference, dtype=torch.float64, device=sums.device) if reference is not None else None
            batch = RowSums(
                sums[0::2], sums[1::2], lengths[0::2], lengths[1::2],
                ref[:, 0] if ref is not None else None, ref[:, 1] if ref is not None else None,
                torch.tensor(labels, dtype=torch.float64, device=sums.device) if labels is not None else None,
            )
            losses, metrics = self.fn(batch, params)
            loss = losses.mean()
            return loss, {self.metric: float(loss.detach()), **metrics, "num_pairs": float(rows)}

        preference_loss.__name__ = f"{name}_loss"
        return preference_loss

    def __call__(
        self, data: list[types.Datum], logprobs_list: list[torch.Tensor], reference_sums: Sequence[tuple[float, float]] | None = None,
        desirable: Sequence[bool] | None = None, **hyperparameters: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Called as any registered loss (`fn(data, logprobs_list, **config)`)."""
        return self.custom_loss(self.fn.__name__, hyperparameters, reference_sums, desirable)(data, logprobs_list)


def preference_loss(name: str, kind: str = PAIRED, used_by: str = "") -> PreferenceLoss:
    """The registered preference loss `name` of `kind` (unknown names: the valid ones)."""
    from cookbook_cli.plugins import registry

    entry = registry.loss_functions.get(name, kinds=(kind,), used_by=used_by)
    if not isinstance(entry.obj, PreferenceLoss):
        raise CookbookError(f"loss {name!r} (plugin {entry.plugin!r}) is registered as a {kind} loss but is not a PreferenceLoss")
    return entry.obj


def preference_loss_names(kind: str = PAIRED) -> list[str]:
    from cookbook_cli.plugins import registry

    return registry.loss_functions.names(kinds=(kind,))


class LossChoices:
    """The registered names of a kind, read when shown (a field's `choices`:
    plugins' losses appear in `--loss-type`'s help, and no plugin loads at import)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __iter__(self) -> Any:
        return iter(preference_loss_names(self.kind))


# -- the built-in losses ---------------------------------------------------------------------


def reward_metrics(chosen_reward: torch.Tensor, rejected_reward: torch.Tensor) -> dict[str, float]:
    """accuracy (share of rows whose chosen reward is above the rejected one),
    the mean rewards and margin (mean of their difference)."""
    c, r = chosen_reward.detach(), rejected_reward.detach()
    return {
        "accuracy": float((c > r).double().mean()),
        "chosen_reward": float(c.mean()),
        "rejected_reward": float(r.mean()),
        "margin": float((c - r).mean()),
    }


def _dpo_logits(rows: RowSums, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """beta h per row, and the metrics of the rewards beta (S - S_ref) of each side."""
    chosen, rejected = rows.log_ratios()
    return beta * (chosen - rejected), reward_metrics(beta * chosen, beta * rejected)


def _sigmoid(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    import torch.nn.functional as F

    logits, metrics = _dpo_logits(rows, p["beta"])
    e = p["label_smoothing"]
    losses = -F.logsigmoid(logits)
    return (losses * (1 - e) - F.logsigmoid(-logits) * e if e else losses), metrics


def _ipo(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    chosen, rejected = rows.log_ratios()
    beta = p["beta"]
    return (chosen - rejected - 1 / (2 * beta)) ** 2, reward_metrics(beta * chosen, beta * rejected)


def _hinge(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    import torch

    logits, metrics = _dpo_logits(rows, p["beta"])
    return torch.relu(1 - logits), metrics


def _robust(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    import torch.nn.functional as F

    logits, metrics = _dpo_logits(rows, p["beta"])
    e = p["label_smoothing"]
    return (-F.logsigmoid(logits) * (1 - e) + F.logsigmoid(-logits) * e) / (1 - 2 * e), metrics


def _simpo(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    import torch.nn.functional as F

    c = p["beta"] * rows.chosen / rows.chosen_len
    r = p["beta"] * rows.rejected / rows.rejected_len
    return -F.logsigmoid(c - r - p["simpo_gamma"]), reward_metrics(c, r)


def _log_odds(mean_logprob: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of p = exp(mean logprob) < 1, stably."""
    import torch

    return mean_logprob - torch.log(-torch.expm1(mean_logprob))


def _orpo(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    import torch.nn.functional as F

    a_c, a_r = rows.chosen / rows.chosen_len, rows.rejected / rows.rejected_len
    log_odds_ratio = _log_odds(a_c) - _log_odds(a_r)
    odds_ratio_loss = -F.logsigmoid(log_odds_ratio)
    nll = -a_c
    lam = p["orpo_lambda"]
    return nll + lam * odds_ratio_loss, {
        **reward_metrics(lam * a_c, lam * a_r),
        "nll": float(nll.detach().mean()),
        "log_odds_ratio": float(log_odds_ratio.detach().mean()),
        "odds_ratio_loss": float(odds_ratio_loss.detach().mean()),
    }


def _kto(rows: RowSums, p: Mapping[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    import torch

    assert rows.desirable is not None
    ratio, mismatched = rows.log_ratios()
    z = mismatched.detach().mean().clamp(min=0)  # the reference point: the batch's KL estimate, no gradient
    beta, good = p["beta"], rows.desirable
    losses = good * p["desirable_weight"] * (1 - torch.sigmoid(beta * (ratio - z))) + (1 - good) * p[
        "undesirable_weight"
    ] * (1 - torch.sigmoid(beta * (z - ratio)))
    with torch.no_grad():
        reward = beta * ratio
        right = torch.where(good > 0, ratio > z, ratio < z)
        metrics = {"kl": float(z), "accuracy": float(right.double().mean()), "desirable": float(good.sum())}
        if bool((good > 0).any()):
            metrics["desirable_reward"] = float(reward[good > 0].mean())
        if bool((good == 0).any()):
            metrics["undesirable_reward"] = float(reward[good == 0].mean())
    return losses, metrics


def _beta(default: float, doc: str) -> Hyperparameter:
    return Hyperparameter(default, low=0.0, low_open=True, doc=doc)


_SMOOTHING_DOC = "the assumed share of flipped labels"

#: name -> (loss, one-line description); registered by `default_plugins.losses`.
BUILTIN_PREFERENCE_LOSSES: dict[str, PreferenceLoss] = {
    "sigmoid": PreferenceLoss(
        _sigmoid,
        "DPO (Rafailov et al. 2023): -log sigmoid(beta h); label_smoothing > 0 is conservative DPO (cDPO).",
        {"beta": _beta(0.1, "how far the policy may move from the reference"),
         "label_smoothing": Hyperparameter(0.0, low=0.0, high=0.5, doc=_SMOOTHING_DOC)},
    ),
    "ipo": PreferenceLoss(
        _ipo, "IPO (Azar et al. 2023): (h - 1/(2 beta))^2, a margin target instead of an unbounded one.",
        {"beta": _beta(0.1, "tau: the target margin is 1/(2 tau)")},
    ),
    "hinge": PreferenceLoss(
        _hinge, "SLiC-HF hinge (Zhao et al. 2023): max(0, 1 - beta h).",
        {"beta": _beta(0.1, "1/beta is the margin")},
    ),
    "robust": PreferenceLoss(
        _robust, "Robust DPO (Chowdhury et al. 2024): DPO unbiased for labels flipped with probability label_smoothing.",
        {"beta": _beta(0.1, "as in DPO"), "label_smoothing": Hyperparameter(0.1, low=0.0, high=0.5, doc=_SMOOTHING_DOC)},
    ),
    "simpo": PreferenceLoss(
        _simpo, "SimPO (Meng et al. 2024), no reference: -log sigmoid(beta (mean logprob c - mean logprob r) - simpo_gamma).",
        {"beta": _beta(2.0, "scale of the length-normalised reward"),
         "simpo_gamma": Hyperparameter(0.5, low=0.0, doc="the target reward margin")},
        needs_reference=False,
    ),
    "orpo": PreferenceLoss(
        _orpo, "ORPO (Hong et al. 2024), no reference: chosen NLL + orpo_lambda * -log sigmoid(log odds ratio).",
        {"orpo_lambda": Hyperparameter(0.1, low=0.0, low_open=True, doc="weight of the odds-ratio term")},
        needs_reference=False,
    ),
    "kto": PreferenceLoss(
        _kto,
        "KTO (Ethayarajh et al. 2024), unpaired rows: desirable and undesirable log-ratios against the batch's KL estimate.",
        {"beta": _beta(0.1, "as in DPO"),
         "desirable_weight": Hyperparameter(1.0, low=0.0, low_open=True, doc="lambda_D"),
         "undesirable_weight": Hyperparameter(1.0, low=0.0, low_open=True, doc="lambda_U")},
        unpaired=True,
    ),
}
