"""Optimizer settings every recipe shares: the learning-rate schedule and the
Adam knobs (a nested chz config: `adam.beta2=0.99`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import chz

from cookbook_cli.errors import CookbookError, UnknownNameError

if TYPE_CHECKING:
    import tinker.types

LR_SCHEDULES = ("linear", "cosine", "constant")


def check_schedule(schedule: str, warmup_steps: int = 0, min_lr_ratio: float = 0.0) -> None:
    """The schedule's settings, checked before anything runs."""
    if schedule not in LR_SCHEDULES:
        raise UnknownNameError("learning-rate schedule", schedule, LR_SCHEDULES)
    if warmup_steps < 0:
        raise CookbookError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise CookbookError(f"min_lr_ratio must be between 0 and 1, got {min_lr_ratio}")


def learning_rate_at(
    step: int,
    total_steps: int,
    base_lr: float,
    schedule: str = "linear",
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
) -> float:
    """The learning rate for 0-based `step` of `total_steps`.

    Warmup rises linearly from base_lr/warmup_steps to base_lr over the first
    `warmup_steps` steps; then `constant` stays at base_lr, `linear` falls
    linearly and `cosine` along a half cosine, both towards
    `min_lr_ratio * base_lr`, reached just after the last step."""
    check_schedule(schedule, warmup_steps, min_lr_ratio)
    if total_steps < 1:
        raise CookbookError(f"total_steps must be at least 1, got {total_steps}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    if schedule == "linear":
        factor = 1.0 - progress
    else:
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * factor)


@chz.chz
class AdamConfig:
    """Adam hyperparameters other than the learning rate (set by the schedule)."""

    beta1: float = chz.field(default=0.9, doc="first-moment decay, in [0, 1)")
    beta2: float = chz.field(default=0.95, doc="second-moment decay, in [0, 1)")
    eps: float = chz.field(default=1e-8, doc="denominator epsilon (> 0)")
    weight_decay: float = chz.field(default=0.0, doc="decoupled weight decay (AdamW), >= 0")
    grad_clip_norm: float = chz.field(default=0.0, doc="clip the global gradient norm to this (0: off)")

    @chz.validate
    def _check(self) -> None:
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise CookbookError(f"adam.{name} must be in [0, 1), got {value}")
        if not self.eps > 0:
            raise CookbookError(f"adam.eps must be > 0, got {self.eps}")
        for name in ("weight_decay", "grad_clip_norm"):
            if getattr(self, name) < 0:
                raise CookbookError(f"adam.{name} must be >= 0, got {getattr(self, name)}")

    def params(self, learning_rate: float) -> tinker.types.AdamParams:
        from tinker.types import AdamParams

        return AdamParams(
            learning_rate=learning_rate,
            beta1=self.beta1,
            beta2=self.beta2,
            eps=self.eps,
            weight_decay=self.weight_decay,
            grad_clip_norm=self.grad_clip_norm,
        )
