"""Tinker's built-in losses, and running any registered loss by name.

Every built-in loss is token-wise and summed (never averaged) over tokens and
data, as on Tinker. With `lp` the learner's logprobs of `target_tokens`, `q`
the sampler's (`logprobs` input), `A` the `advantages` input and
`r = exp(lp - q)`:

| loss                | inputs (besides target_tokens) | config (default)                             | per-token loss                         |
| ------------------- | ------------------------------ | -------------------------------------------- | -------------------------------------- |
| cross_entropy       | weights (default 1)            | -                                            | -lp * weights                          |
| importance_sampling | logprobs, advantages           | -                                            | -r * A                                 |
| ppo                 | logprobs, advantages           | clip_low_threshold (0.8), clip_high_threshold (1.2) | -min(r * A, clip(r, low, high) * A) |
| cispo               | logprobs, advantages           | clip_low_threshold (0.8), clip_high_threshold (1.2) | -sg(clip(r, low, high)) * lp * A |
| dro                 | logprobs, advantages           | beta (0.05)                                  | -(lp * A - beta / 2 * (lp - q)^2)      |

The local engine computes these itself; the tinker engine passes the name to
the service. A `BuiltinLoss` is also a custom loss (`as_custom_loss`), which is
how the tests check the two paths agree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch
    from tinker import types

    from cookbook_cli.engines.protocol import APIFuture, CustomLossFn, TrainingClient

Elementwise = Callable[["torch.Tensor", Mapping[str, "torch.Tensor"], Mapping[str, float]], "torch.Tensor"]


def _cross_entropy(lp: torch.Tensor, inputs: Mapping[str, torch.Tensor], cfg: Mapping[str, float]) -> torch.Tensor:
    weights = inputs.get("weights")
    return -lp if weights is None else -lp * weights


def _ratio(lp: torch.Tensor, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    import torch

    return torch.exp(lp - inputs["logprobs"])


def _importance_sampling(lp: torch.Tensor, inputs: Mapping[str, torch.Tensor], cfg: Mapping[str, float]) -> torch.Tensor:
    return -_ratio(lp, inputs) * inputs["advantages"]


def _ppo(lp: torch.Tensor, inputs: Mapping[str, torch.Tensor], cfg: Mapping[str, float]) -> torch.Tensor:
    import torch

    ratio = _ratio(lp, inputs)
    adv = inputs["advantages"]
    clipped = torch.clamp(ratio, cfg["clip_low_threshold"], cfg["clip_high_threshold"])
    return -torch.minimum(ratio * adv, clipped * adv)


def _cispo(lp: torch.Tensor, inputs: Mapping[str, torch.Tensor], cfg: Mapping[str, float]) -> torch.Tensor:
    import torch

    clipped = torch.clamp(_ratio(lp, inputs), cfg["clip_low_threshold"], cfg["clip_high_threshold"])
    return -clipped.detach() * lp * inputs["advantages"]


def _dro(lp: torch.Tensor, inputs: Mapping[str, torch.Tensor], cfg: Mapping[str, float]) -> torch.Tensor:
    diff = lp - inputs["logprobs"]
    return -(lp * inputs["advantages"] - 0.5 * cfg["beta"] * diff * diff)


@dataclass(frozen=True)
class BuiltinLoss:
    """A loss the engine computes itself, selected by name in `forward_backward`."""

    name: str
    description: str
    elementwise: Elementwise
    required_inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    config_defaults: dict[str, float] = field(default_factory=dict)

    @property
    def input_keys(self) -> tuple[str, ...]:
        return ("target_tokens", *self.required_inputs, *self.optional_inputs)

    def resolve_config(self, config: Mapping[str, Any] | None) -> dict[str, float]:
        """Defaults overridden by `config`; unknown keys are an error, as on Tinker."""
        resolved = dict(self.config_defaults)
        for key, value in (config or {}).items():
            if key not in self.config_defaults:
                valid = ", ".join(self.config_defaults) or "none"
                raise CookbookError(f"loss {self.name!r} has no config key {key!r} (valid: {valid})")
            try:
                resolved[key] = float(value)
            except (TypeError, ValueError):
                raise CookbookError(f"loss {self.name!r} config {key!r} must be a number, got {value!r}") from None
        return resolved

    def as_custom_loss(self, config: Mapping[str, Any] | None = None) -> CustomLossFn:
        """This loss as `fn(data, logprobs_list) -> (loss, metrics)` for `forward_backward_custom`."""
        cfg = self.resolve_config(config)

        def fn(data: list[types.Datum], logprobs_list: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            total = None
            for i, (datum, lp) in enumerate(zip(data, logprobs_list, strict=True)):
                inputs = {
                    k: datum.loss_fn_inputs[k].to_torch().to(lp.device, lp.dtype).reshape(lp.shape)
                    for k in (*self.required_inputs, *self.optional_inputs)
                    if k in datum.loss_fn_inputs
                }
                missing = [k for k in self.required_inputs if k not in inputs]
                if missing:
                    raise CookbookError(f"loss {self.name!r}: datum {i} lacks loss_fn_inputs {missing}")
                term = self.elementwise(lp, inputs, cfg).sum()
                total = term if total is None else total + term
            if total is None:
                raise CookbookError(f"loss {self.name!r} needs at least one datum")
            return total, {"loss:sum": float(total.detach())}

        fn.__name__ = f"{self.name}_loss"
        return fn


_RL_INPUTS = ("logprobs", "advantages")
_CLIP = {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}

BUILTIN_LOSSES: dict[str, BuiltinLoss] = {
    loss.name: loss
    for loss in (
        BuiltinLoss(
            "cross_entropy",
            "Supervised learning: -sum(weights * logprobs) of target_tokens.",
            _cross_entropy,
            optional_inputs=("weights",),
        ),
        BuiltinLoss(
            "importance_sampling",
            "Policy gradient with importance weights exp(lp - sampler lp) times advantages.",
            _importance_sampling,
            required_inputs=_RL_INPUTS,
        ),
        BuiltinLoss(
            "ppo",
            "PPO clipped objective, token-wise; config clip_low_threshold, clip_high_threshold.",
            _ppo,
            required_inputs=_RL_INPUTS,
            config_defaults=dict(_CLIP),
        ),
        BuiltinLoss(
            "cispo",
            "CISPO: stop-gradient clipped ratio times logprob times advantage; same clip config as ppo.",
            _cispo,
            required_inputs=_RL_INPUTS,
            config_defaults=dict(_CLIP),
        ),
        BuiltinLoss(
            "dro",
            "Direct reward optimisation with a quadratic penalty; config beta.",
            _dro,
            required_inputs=_RL_INPUTS,
            config_defaults={"beta": 0.05},
        ),
    )
}


def get_builtin_loss(name: str) -> BuiltinLoss:
    if name not in BUILTIN_LOSSES:
        from cookbook_cli.errors import UnknownNameError

        raise UnknownNameError(
            "built-in loss", name, BUILTIN_LOSSES, "Registered custom losses run through forward_backward_custom."
        )
    return BUILTIN_LOSSES[name]


def get_custom_loss(name: str, loss_fn_config: Mapping[str, Any] | None = None) -> CustomLossFn:
    """A registered loss as a custom loss function; config values become keyword arguments."""
    from cookbook_cli.plugins import registry

    entry = registry.loss_functions.get(name)
    if isinstance(entry.obj, BuiltinLoss):
        return entry.obj.as_custom_loss(loss_fn_config)
    if not callable(entry.obj):
        raise CookbookError(f"loss function {name!r} (plugin {entry.plugin!r}) is not callable")
    return functools.partial(entry.obj, **dict(loss_fn_config or {})) if loss_fn_config else entry.obj


def forward_backward_with_loss(
    client: TrainingClient,
    data: Sequence[types.Datum],
    loss_fn: str,
    loss_fn_config: Mapping[str, Any] | None = None,
) -> APIFuture[types.ForwardBackwardOutput]:
    """Run any registered loss by name: built-ins on the engine, the rest through
    `forward_backward_custom` (so a plugin's loss works on every engine)."""
    from cookbook_cli.plugins import registry

    entry = registry.loss_functions.get(loss_fn)
    if entry.extra.get("builtin"):
        return client.forward_backward(data, loss_fn, loss_fn_config)
    return client.forward_backward_custom(data, get_custom_loss(loss_fn, loss_fn_config))


def check_loss(name: str, loss_fn_config: Mapping[str, Any] | None) -> None:
    """The loss exists and takes every key of its config, checked before a model loads."""
    import inspect

    from cookbook_cli.plugins import registry

    entry = registry.loss_functions.get(name)  # unknown names: suggestions
    kind = entry.extra.get("kind")
    if kind:  # e.g. the preference losses, which read per-pair sums and a reference
        raise CookbookError(f"loss {name!r} is a {kind} loss (a `--loss-type` of the preference recipes), not a loss over per-token logprobs")
    if isinstance(entry.obj, BuiltinLoss):
        entry.obj.resolve_config(loss_fn_config)
        return
    try:
        params = inspect.signature(entry.obj).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in (loss_fn_config or {}) if k not in params]
    if unknown:
        takes = ", ".join(k for k, p in params.items() if p.default is not inspect.Parameter.empty) or "none"
        raise CookbookError(f"loss {name!r} has no config key {unknown[0]!r} (valid: {takes})")
