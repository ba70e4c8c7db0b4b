"""The config fields every recipe that trains in epochs over a fixed dataset
shares (`train sl`, `train dpo`), their checks, and the defaults that follow
from other fields (model, renderer, learning rate, log directory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import AdamConfig, check_schedule

C = TypeVar("C", bound="EpochRunConfig")


@chz.chz
class EpochRunConfig:
    """Where a run lives, what it trains, and how (fields every epoch recipe has)."""

    log_dir: str | None = chz.field(default=None, doc="run directory; default runs/<recipe>-<dataset>-<model>-<time>")
    engine: str = chz.field(default="local", doc="training engine (cookbook engines list)")
    model: str | None = chz.field(default=None, doc="base model; default follows the engine and renderer")
    renderer: str | None = chz.field(default=None, doc="chat format; default: the model's recommended renderer")
    batch_size: int = chz.field(default=8, doc="examples per step (sl: conversations; dpo: pairs)")
    learning_rate: float | None = chz.field(default=None, doc="peak learning rate; default depends on the model")
    lr_schedule: str = chz.field(default="linear", doc="linear, cosine or constant")
    warmup_steps: int = chz.field(default=0, doc="linear warmup steps")
    min_lr_ratio: float = chz.field(default=0.0, doc="linear/cosine decay towards this fraction of the peak")
    epochs: int = chz.field(default=1, doc="passes over the training split")
    max_steps: int | None = chz.field(default=None, doc="stop after this many steps")
    max_length: int | None = chz.field(default=2048, doc="truncate examples to this many tokens")
    lora_rank: int = chz.field(default=32, doc="LoRA rank (0: full fine-tuning where the engine allows it)")
    eval_every: int = chz.field(default=20, doc="evaluate on the test split every N steps (0: only at the end)")
    save_every: int = chz.field(default=20, doc="checkpoint every N steps (0: only at the end)")
    seed: int = chz.field(default=0, doc="data order, test split and adapter initialisation")
    adam: AdamConfig = chz.field(default_factory=AdamConfig, doc="optimizer")
    engine_options: dict[str, str] = chz.field(default_factory=dict, doc="passed to the engine (e.g. device, dtype)")

    @chz.validate
    def _check_run_fields(self) -> None:
        check_schedule(self.lr_schedule, self.warmup_steps, self.min_lr_ratio)
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise CookbookError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "lora_rank"):
            if getattr(self, name) < 0:
                raise CookbookError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise CookbookError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_length is not None and self.max_length < 2:
            raise CookbookError(f"max_length must be at least 2, got {self.max_length}")
        if self.learning_rate is not None and self.learning_rate < 0:
            raise CookbookError(f"learning_rate must be >= 0, got {self.learning_rate}")


def resolve_run_defaults(config: C, recipe: str, data_label: str, learning_rate: Callable[[str, Any], float] | None = None) -> C:
    """Model and renderer (following the engine), learning rate (`learning_rate(model,
    spec)` or the engine's default for the model) and log directory."""
    from cookbook_cli import models
    from cookbook_cli.run.lifecycle import check_log_dir, default_log_dir

    model, renderer = models.resolve_model_and_renderer(config.engine, config.model, config.renderer)
    lr = config.learning_rate
    if lr is None:
        spec = models.model_spec(model, config.engine)
        lr = learning_rate(model, spec) if learning_rate else models.default_learning_rate(model, config.engine, config.lora_rank)
    log_dir = config.log_dir
    if log_dir is None:
        log_dir = str(default_log_dir(recipe, data_label, models.model_label(model, config.engine)))
    check_log_dir(log_dir)
    return chz.replace(config, model=model, renderer=renderer, learning_rate=lr, log_dir=log_dir)


def total_steps_of(config: EpochRunConfig, batches_per_epoch: int) -> int:
    """Epochs times batches, capped by max_steps; warmup must fit in it."""
    total = batches_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    if config.warmup_steps >= total and config.warmup_steps > 0:
        raise CookbookError(f"warmup_steps={config.warmup_steps} is not less than the run's {total} steps; lower warmup_steps")
    return total
