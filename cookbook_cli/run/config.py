"""The run config every recipe's config inherits (TRL's `_BaseConfig` ->
`DPOConfig`): where a run lives, the engine and model, the learning rate and
its schedule, LoRA rank, cadences, seed, Adam, evaluators. Recipe configs add
only their own fields (an epoch recipe inherits `EpochConfig`).

One place for defaults (`DEFAULT_LORA_RANK`, the default engine from the
engine registry) and for cross-field checks: `@chz.validate` here checks the
numbers, `resolve()` fills the defaults that depend on other fields and
`check_lora_rank()` the rank against the model's width, and the recipes'
start `check_engine_ready` (credentials), all before a dataset or model
loads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import LR_SCHEDULES, AdamConfig, check_schedule

if TYPE_CHECKING:
    from cookbook_cli.plugins.registry import Registry

C = TypeVar("C", bound="RunConfig")

DEFAULT_LORA_RANK = 32


def default_engine() -> str:
    """The first engine registered (core's built-ins come first: `local`)."""
    from cookbook_cli.plugins import registry

    names = registry.engines.names()
    if not names:
        raise CookbookError("no training engine is registered (cookbook engines list)")
    return names[0]


@chz.chz
class RunConfig:
    """The fields every recipe has. Subclasses add theirs and may override the
    hooks below (`data_label`, `suggested`, `trains_on_policy`, `default_learning_rate`, `resolve_more`)."""

    log_dir: str | None = chz.field(default=None, doc="run directory; default runs/<recipe>-<data>-<model>-<time>")
    engine: str | None = chz.field(default=None, doc="training engine (cookbook engines list); default: the first registered, local")
    engine_options: dict[str, str] = chz.field(default_factory=dict, doc="passed to the engine (e.g. device, dtype)")
    model: str | None = chz.field(default=None, doc="base model; default follows the engine and renderer")
    renderer: str | None = chz.field(default=None, doc="chat format; default: the model's recommended renderer")
    learning_rate: float | None = chz.field(default=None, doc="peak learning rate; default depends on the model (cookbook models info)")
    lr_schedule: str = chz.field(default="linear", doc="the decay after warmup", metadata={"choices": LR_SCHEDULES})
    warmup_steps: int = chz.field(default=0, doc="linear warmup steps")
    min_lr_ratio: float = chz.field(default=0.0, doc="linear/cosine decay towards this fraction of the peak")
    lora_rank: int | None = chz.field(default=None, doc=f"LoRA rank (0: full fine-tuning where the engine allows it); default {DEFAULT_LORA_RANK}")
    max_steps: int | None = chz.field(default=None, doc="stop after this many steps; default: what the data gives")
    save_every: int = chz.field(default=20, doc="checkpoint every N steps (0: only at the end)")
    eval_every: int = chz.field(default=20, doc="evaluate every N steps (0: only at the end)")
    evaluators: list[str] = chz.field(
        default_factory=list, doc="evaluators, logged as test/<name>/<metric>, e.g. 'arithmetic max_tokens=1' (cookbook evaluators list)"
    )
    seed: int = chz.field(default=0, doc="data order, sampling and adapter initialisation")
    adam: AdamConfig = chz.field(default_factory=AdamConfig, doc="optimizer")

    #: Fields a resumed run may change: where it lives, how long it runs (the
    #: schedule then spans the new total), how often it saves and evaluates.
    RESUME_MAY_CHANGE = ("log_dir", "max_steps", "save_every", "eval_every", "evaluators")
    #: The option that gives more steps when --max-steps asks for more than the data gives.
    MORE_STEPS_OPTION = ""

    @chz.validate
    def _check_run_fields(self) -> None:
        check_schedule(self.lr_schedule, self.warmup_steps, self.min_lr_ratio)
        at_least(self, 0, "eval_every", "save_every", "lora_rank", "warmup_steps")
        at_least(self, 1, "max_steps")
        if self.learning_rate is not None and self.learning_rate < 0:
            raise CookbookError(f"learning_rate must be >= 0, got {self.learning_rate}")

    # -- hooks a recipe's config may override --------------------------------------------------
    def registries(self) -> dict[str, Registry[Any]]:
        """Fields built from a registry, recorded by name in config.json."""
        return {}

    def data_label(self) -> str:
        """What the run trains on, for the default log directory."""
        return ""

    def suggested(self, engine: str) -> dict[str, Any]:
        """Defaults the data suggests (model, renderer, lora_rank, learning_rate)."""
        return {}

    def trains_on_policy(self) -> bool:
        """Whether the recipe trains on its own samples (RL, on-policy distillation),
        which wants a lower default learning rate than supervised learning."""
        return False

    def default_learning_rate(self, model: str, engine: str, rank: int) -> float:
        from cookbook_cli import models

        return models.default_learning_rate(model, engine, rank, self.trains_on_policy())

    def resolve_more(self, resolved: RunConfig) -> dict[str, Any]:
        """More fields to fill in once model, renderer and rank are known."""
        return {}

    # -- one resolution and one check for every recipe ---------------------------------------------
    def to_json(self) -> dict[str, Any]:
        from cookbook_cli.config import config_to_json

        return config_to_json(self, self.registries())

    def resolve(self: C, recipe: str) -> C:
        """Fill in the defaults that depend on other fields: engine, model,
        renderer (the data's suggestion where it has one), LoRA rank, learning
        rate and log directory; then the LoRA rank against the model's width."""
        from cookbook_cli import models
        from cookbook_cli.run.lifecycle import check_log_dir, default_log_dir

        engine = self.engine or default_engine()
        suggested = self.suggested(engine)
        model, renderer = self.model, self.renderer
        if model is None and renderer is None:
            model, renderer = suggested.get("model"), suggested.get("renderer")
        model, renderer = models.resolve_model_and_renderer(engine, model, renderer)
        # the suggested training settings go with the suggested model only
        tuned = suggested if "model" in suggested and model == suggested["model"] else {}
        rank = self.lora_rank if self.lora_rank is not None else int(tuned.get("lora_rank", DEFAULT_LORA_RANK))
        lr = self.learning_rate
        if lr is None:
            lr = float(tuned["learning_rate"]) if "learning_rate" in tuned else self.default_learning_rate(model, engine, rank)
        log_dir = self.log_dir
        if log_dir is None:
            log_dir = str(default_log_dir(recipe, self.data_label(), models.model_label(model, engine)))
        check_log_dir(log_dir)
        out = chz.replace(self, engine=engine, model=model, renderer=renderer, lora_rank=rank, learning_rate=float(lr), log_dir=log_dir)
        more = out.resolve_more(out)
        out = chz.replace(out, **more) if more else out
        out.check_lora_rank()
        return out

    def check_lora_rank(self) -> None:
        """LoRA rank against the model's width, once the model is known (before it loads)."""
        assert self.model is not None and self.lora_rank is not None
        width = model_width(self.model)
        if width is not None and self.lora_rank > width:
            raise CookbookError(
                f"lora_rank={self.lora_rank} is larger than the model's hidden size ({width}) of {self.model}; "
                f"use --lora-rank {min(DEFAULT_LORA_RANK, width)} or less (0: full fine-tuning)"
            )

    def learning_rate_at(self, step: int, total_steps: int) -> float:
        from cookbook_cli.optim import learning_rate_at

        assert self.learning_rate is not None
        return learning_rate_at(step, total_steps, self.learning_rate, self.lr_schedule, self.warmup_steps, self.min_lr_ratio)

    def total_steps(self, available: int, say: Callable[[str], None], unit: str = "batches") -> int:
        """The run's steps: what the data gives (`available`), capped by
        max_steps; a max_steps above it is said once, naming the option that
        gives more; warmup must fit."""
        total = available
        if self.max_steps is not None:
            if self.max_steps > available:
                more = f"; {self.MORE_STEPS_OPTION} gives more" if self.MORE_STEPS_OPTION else ""
                say(f"--max-steps {self.max_steps} is more than the {available} steps the data gives ({unit}){more}: running {available}")
            total = min(total, self.max_steps)
        if self.warmup_steps >= total and self.warmup_steps > 0:
            raise CookbookError(f"warmup_steps={self.warmup_steps} is not less than the run's {total} steps; lower warmup_steps")
        return total


@chz.chz
class EpochConfig(RunConfig):
    """A run in epochs over a fixed dataset, in batches (sl, dpo, distill)."""

    batch_size: int = chz.field(default=8, doc="examples per step")
    epochs: int = chz.field(default=1, doc="passes over the training data")
    max_length: int | None = chz.field(default=2048, doc="truncate examples to this many tokens")

    RESUME_MAY_CHANGE = (*RunConfig.RESUME_MAY_CHANGE, "epochs")
    MORE_STEPS_OPTION = "--epochs"

    @chz.validate
    def _check_epoch_fields(self) -> None:
        check_epoch_fields(self)

    def epoch_steps(self, batches_per_epoch: int, say: Callable[[str], None]) -> int:
        """Epochs times batches, capped by max_steps."""
        return self.total_steps(batches_per_epoch * self.epochs, say, f"{self.epochs} epoch(s) of {batches_per_epoch} batches")


def check_epoch_fields(config: EpochConfig) -> None:
    """EpochConfig's checks (a config that inherits it beside another base calls them itself)."""
    at_least(config, 1, "batch_size", "epochs")
    if config.max_length is not None and config.max_length < 2:
        raise CookbookError(f"max_length must be at least 2, got {config.max_length}")


def at_least(config: Any, low: int, *names: str) -> None:
    """Each named field (None: unset) is at least `low`."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < low:
            raise CookbookError(f"{name} must be {'at least 1' if low == 1 else f'>= {low}'}, got {value}")


def check_engine_ready(engine: str) -> None:
    """An engine that says it cannot run here (its `status`, e.g. tinker without
    TINKER_API_KEY) is refused before the dataset loads."""
    from cookbook_cli.plugins import registry

    status = registry.engines.get(engine).extra.get("status")
    if not callable(status):
        return
    said = str(status())
    if said.startswith("needs"):
        other = default_engine()
        instead = f"use --engine {other}" if other != engine else "see cookbook engines list"
        raise CookbookError(f"engine {engine!r} {said}, which is not set here; set it up, or {instead}")


def model_width(model: str) -> int | None:
    """The model's hidden size where it is known without loading it: a random
    shape, its family's table, or its files (a folder's config.json, a .gguf's
    header, the Hugging Face cache)."""
    from cookbook_cli.engines.local.shapes import is_random_model, parse_random_model

    if is_random_model(model):
        return parse_random_model(model).shape.hidden
    from cookbook_cli.models import family_of, known_hidden_size

    try:
        family = family_of(model)[1]
    except CookbookError:  # no family: the model's own files may still say
        family = None
    return known_hidden_size(model, family)
