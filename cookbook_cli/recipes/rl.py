"""`cookbook train rl`: reinforcement learning on any registered environment.

Synchronous on-policy and asynchronous off-policy training are one loop,
parameterised by `max_steps_off_policy` (K): the shared sampler
(`cookbook_cli.rl.sampler.OffPolicyPipeline`) starts group rollouts ahead of
training by at most K steps and hands the trainer groups at most K steps stale;
with K = 0 every group is sampled by the weights it trains (synchronous
on-policy). Staleness (step - version) of every trained group is reported.

Each step: advantages centred within each group, datums of the sampled tokens,
an optional KL penalty against a reference model, one forward_backward with the
configured loss and one optim_step, metrics and HTML transcripts.

The run lifecycle (`cookbook_cli.run.lifecycle`) does the rest: checkpoints
(`save_every` and the last step) record the step and the dataset position;
re-running with `--if-exists resume` loads weights and optimizer state and
continues from there. In the synchronous mode that is exact; in the
asynchronous mode, groups that were in flight at the checkpoint are sampled
again after the resume.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import RegistryFactory, config_to_json, registry_name_of
from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import AdamConfig, check_schedule, learning_rate_at
from cookbook_cli.plugins import registry
from cookbook_cli.rl.arithmetic import ArithmeticBuilder
from cookbook_cli.rl.types import RLDatasetBuilder, TrajectoryGroup

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import SamplingClient, ServiceClient, TrainingClient
    from cookbook_cli.rl.sampler import StepBatch
    from cookbook_cli.run.lifecycle import Run

logger = logging.getLogger("cookbook_cli.rl")

DEFAULT_LORA_RANK = 32


@chz.chz
class RLConfig:
    """Reinforcement learning on a registered environment."""

    env: RLDatasetBuilder = chz.field(
        default_factory=ArithmeticBuilder,
        meta_factory=RegistryFactory(registry.envs, ArithmeticBuilder),
        doc="environment (cookbook envs list); its fields are env.<field>",
    )
    log_dir: str | None = chz.field(default=None, doc="run directory; default runs/rl-<env>-<model>-<time>")
    engine: str = chz.field(default="local", doc="training engine (cookbook engines list)")
    model: str | None = chz.field(default=None, doc="base model; default: the env's suggestion on local, else follows the engine and renderer")
    renderer: str | None = chz.field(default=None, doc="chat format; default: the model's recommended renderer")
    max_steps: int | None = chz.field(default=None, doc="training steps; default: the dataset's length")
    group_size: int = chz.field(default=4, doc="episodes per group (rewards are centred within a group)")
    groups_per_batch: int = chz.field(default=8, doc="groups per training step")
    max_steps_off_policy: int = chz.field(default=0, doc="0: synchronous on-policy; K > 0: asynchronous, groups at most K steps stale")
    loss_fn: str = chz.field(default="importance_sampling", doc="importance_sampling, ppo, cispo, dro or a registered loss (cookbook losses list)")
    loss_fn_config: dict[str, float] | None = chz.field(default=None, doc="the loss's config, e.g. loss_fn_config.clip_low_threshold=0.9")
    learning_rate: float | None = chz.field(default=None, doc="learning rate; default: the env's suggestion on local, else depends on the model")
    lr_schedule: str = chz.field(default="constant", doc="linear, cosine or constant")
    warmup_steps: int = chz.field(default=0, doc="linear warmup steps")
    lora_rank: int | None = chz.field(default=None, doc=f"LoRA rank, 0 for full fine-tuning; default: the env's suggestion on local, else {DEFAULT_LORA_RANK}")
    max_tokens: int | None = chz.field(default=None, doc="sampled tokens per turn; default: the env's")
    temperature: float = chz.field(default=1.0, doc="sampling temperature")
    kl_penalty_coef: float = chz.field(default=0.0, doc="KL penalty against the reference model (0: off)")
    kl_reference_model: str | None = chz.field(default=None, doc="reference model of the KL penalty; default: the base model")
    remove_constant_reward_groups: bool = chz.field(default=False, doc="do not train on groups whose episodes all earned the same reward")
    save_every: int = chz.field(default=20, doc="checkpoint every N steps (0: only at the end)")
    eval_every: int = chz.field(default=20, doc="run the evaluators every N steps (0: only at the end)")
    evaluators: list[str] = chz.field(
        default_factory=list, doc="evaluators, logged as test/<name>/<metric>, e.g. 'env env=arithmetic' (cookbook evaluators list)"
    )
    num_groups_to_log: int = chz.field(default=2, doc="groups per step in the HTML transcripts (0: none)")
    seed: int = chz.field(default=0, doc="problems and adapter initialisation")
    adam: AdamConfig = chz.field(default_factory=AdamConfig, doc="optimizer")
    engine_options: dict[str, str] = chz.field(default_factory=dict, doc="passed to the engine (e.g. device, dtype)")

    @chz.validate
    def _check(self) -> None:
        check_schedule(self.lr_schedule, self.warmup_steps)
        for name in ("group_size", "groups_per_batch"):
            if getattr(self, name) < 1:
                raise CookbookError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps_off_policy", "save_every", "eval_every", "num_groups_to_log", "warmup_steps"):
            if getattr(self, name) < 0:
                raise CookbookError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise CookbookError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise CookbookError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.lora_rank is not None and self.lora_rank < 0:
            raise CookbookError(f"lora_rank must be >= 0, got {self.lora_rank}")
        if self.learning_rate is not None and self.learning_rate < 0:
            raise CookbookError(f"learning_rate must be >= 0, got {self.learning_rate}")
        if self.kl_penalty_coef < 0:
            raise CookbookError(f"kl_penalty_coef must be >= 0, got {self.kl_penalty_coef}")
        if self.temperature < 0:
            raise CookbookError(f"temperature must be >= 0, got {self.temperature}")
        if self.group_size == 1:
            raise CookbookError(
                "group_size=1 gives every episode an advantage of 0 (rewards are centred within a group), "
                "so nothing can be learned; use --group-size 2 or more"
            )


def env_name(config: RLConfig) -> str:
    """The registry name of the config's env (its class name when it is not registered)."""
    return registry_name_of(registry.envs, config.env) or type(config.env).__name__


def resolve(config: RLConfig) -> RLConfig:
    """Fill in the defaults that depend on other fields. On an engine that runs
    small models offline the env may suggest a model, renderer, learning rate
    and LoRA rank (a toy env suggests a small random model that can learn it);
    the rest follow the engine and model as in `train sl`."""
    from cookbook_cli import models
    from cookbook_cli.run.lifecycle import check_log_dir, default_log_dir

    registry.loss_functions.get(config.loss_fn)  # unknown names fail here, with suggestions
    small_models = registry.engines.get(config.engine).extra.get("small_models", False)
    suggested = config.env.local_defaults() if small_models else {}
    model, renderer = config.model, config.renderer
    if model is None and renderer is None:
        model, renderer = suggested.get("model"), suggested.get("renderer")
    model, renderer = models.resolve_model_and_renderer(config.engine, model, renderer)
    if config.kl_reference_model is not None:
        from cookbook_cli.local_paths import check_scoring_model

        check_scoring_model(model, config.kl_reference_model, "kl_reference_model", "give a model (Hub id or folder) with the policy's tokenizer")
    # the suggested training settings go with the suggested model only
    tuned = suggested if "model" in suggested and model == suggested["model"] else {}
    rank = config.lora_rank if config.lora_rank is not None else tuned.get("lora_rank", DEFAULT_LORA_RANK)
    if config.learning_rate is not None:
        lr = config.learning_rate
    else:
        lr = tuned.get("learning_rate", models.default_learning_rate(model, config.engine, rank))
    max_tokens = config.max_tokens if config.max_tokens is not None else int(config.env.default_max_tokens)
    log_dir = config.log_dir if config.log_dir is not None else str(default_log_dir("rl", env_name(config), models.model_label(model, config.engine)))
    check_log_dir(log_dir)
    return chz.replace(
        config, model=model, renderer=renderer, lora_rank=int(rank), learning_rate=float(lr), max_tokens=max_tokens, log_dir=log_dir
    )


#: Settings a resumed run may change (as in `train sl`), how many groups it shows and what it evaluates.
RESUME_MAY_CHANGE = ("log_dir", "max_steps", "save_every", "num_groups_to_log", "eval_every", "evaluators")


def config_json(config: RLConfig) -> dict[str, Any]:
    return config_to_json(config, {"env": registry.envs})


# -- the run -----------------------------------------------------------------------------


@dataclass
class RLResult:
    log_dir: Path
    total_steps: int
    start_step: int
    steps_done: int
    metrics: list[dict[str, Any]] = field(default_factory=list)  # rows of this invocation
    final_checkpoint: dict[str, Any] | None = None
    elapsed: float = 0.0

    def rewards(self) -> list[float]:
        return [r["env/reward/mean"] for r in self.metrics if "env/reward/mean" in r]


def train(
    config: RLConfig,
    if_exists: str = "fail",
    service: ServiceClient | Any = None,
    progress: bool | None = None,
    on_log: Any = None,
    argv: list[str] | None = None,
    log_to: Sequence[str] = (),
    logger_options: Mapping[str, Mapping[str, str]] | None = None,
) -> RLResult:
    """Run RL as configured: the library entry point of `cookbook train rl`.

    `if_exists`: resume, overwrite, fail or ask (for a log directory that holds
    a run). `service` replaces the engine's client (tests and benchmarks pass
    `cookbook_cli.engines.standin.StandInService`). `progress`: True a rich bar,
    False plain lines, None a bar on a terminal only. `on_log` receives the
    run's messages (default: print). `argv`: the command line, quoted back when
    the run is interrupted. `log_to` / `logger_options`: experiment trackers
    beside metrics.jsonl (`cookbook loggers list`)."""
    return asyncio.run(train_async(config, if_exists, service, progress, on_log, argv, log_to, logger_options))


async def train_async(
    config: RLConfig,
    if_exists: str = "fail",
    service: ServiceClient | Any = None,
    progress: bool | None = None,
    on_log: Any = None,
    argv: list[str] | None = None,
    log_to: Sequence[str] = (),
    logger_options: Mapping[str, Mapping[str, str]] | None = None,
) -> RLResult:
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.completers import SamplingClientCompleter
    from cookbook_cli.evaluation.runner import evaluate_with_client
    from cookbook_cli.rl.loop import LoopSettings, run_sampler_loop
    from cookbook_cli.rl.types import EnvContext
    from cookbook_cli.run.lifecycle import RunSettings, open_run
    from cookbook_cli.tokenizers import get_tokenizer

    cfg = resolve(config)
    assert cfg.log_dir is not None and cfg.model is not None and cfg.renderer is not None
    assert cfg.learning_rate is not None and cfg.lora_rank is not None and cfg.max_tokens is not None
    name = env_name(cfg)

    # The env first: a bad env or option fails in a second, before any model loads.
    tokenizer = get_tokenizer(tokenizer_for_model(cfg.model, cfg.engine))
    renderer = get_renderer(cfg.renderer, tokenizer)
    ctx = EnvContext(name, renderer, tokenizer, cfg.group_size, cfg.groups_per_batch, cfg.seed)
    dataset, _test = cfg.env(ctx)
    if len(dataset) == 0:
        raise CookbookError(f"env {name!r} made an empty dataset; check its options (cookbook envs list)")
    total_steps = len(dataset) if cfg.max_steps is None else min(cfg.max_steps, len(dataset))
    from cookbook_cli.evaluation.in_training import prepare_evaluators

    evaluators = prepare_evaluators(cfg.evaluators, renderer)

    settings = RunSettings("rl", cfg.log_dir, config_json(cfg), cfg.engine, cfg.engine_options, if_exists, RESUME_MAY_CHANGE, argv, log_to, logger_options or {})
    with open_run(settings, service, on_log) as run:
        start = run.start_position(len(dataset), total_steps)
        t_start = time.monotonic()
        tc = await run.training_client_async(cfg.model, cfg.lora_rank, cfg.seed)
        reference = None
        if cfg.kl_penalty_coef > 0:
            reference = await run.service.create_sampling_client_async(base_model=cfg.kl_reference_model or cfg.model)

        max_tokens, temperature = cfg.max_tokens, cfg.temperature

        def make_completer(client: SamplingClient, rollout_index: int) -> SamplingClientCompleter:
            return SamplingClientCompleter(client, max_tokens, temperature, seed=cfg.seed * 1_000_003 + rollout_index)

        loop = _Loop(cfg, name, run, tc, tokenizer, reference, total_steps)
        async def evaluate(step: int, final: bool) -> dict[str, Any]:
            if not evaluators or not (final or (cfg.eval_every and step % cfg.eval_every == 0)):
                return {}
            return await evaluate_with_client(evaluators, renderer, await tc.save_weights_and_get_sampling_client_async(), cfg.seed)

        settings = LoopSettings(
            f"train rl ({name})", f"env {name!r}", cfg.groups_per_batch, cfg.max_steps_off_policy, cfg.save_every, progress,
            lambda m: {"reward": m.get("env/reward/mean"), "stale": m.get("staleness/mean")}, evaluate,
        )
        done = await run_sampler_loop(run, tc, dataset, start, total_steps, make_completer, loop.train, settings, t_start)
        result = RLResult(run.path, total_steps, start.step, done.steps_done, done.metrics, done.final_checkpoint)
        result.elapsed = time.monotonic() - t_start
        return result


class _Loop:
    """What one step does once its groups are collected: advantages, datums,
    the optimizer step, metrics, transcripts."""

    def __init__(
        self, cfg: RLConfig, name: str, run: Run, tc: TrainingClient, tokenizer: Any, reference: Any, total_steps: int
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.run = run
        self.tc = tc
        self.tokenizer = tokenizer
        self.reference = reference
        self.total_steps = total_steps

    def learning_rate(self, step: int) -> float:
        cfg = self.cfg
        assert cfg.learning_rate is not None
        return learning_rate_at(step, self.total_steps, cfg.learning_rate, cfg.lr_schedule, cfg.warmup_steps)

    async def train(self, batch: StepBatch) -> tuple[dict[str, Any], float]:
        from cookbook_cli.rl.data_processing import (
            assemble_training_data,
            compute_advantages,
            remove_constant_reward_groups,
        )
        from cookbook_cli.rl.metrics import episode_metrics, incorporate_kl_penalty, kl_sample_train

        cfg = self.cfg
        lr = self.learning_rate(batch.step)
        metrics: dict[str, Any] = episode_metrics(batch.groups)
        metrics.update(batch.metrics())
        metrics["lr"] = lr
        groups = remove_constant_reward_groups(batch.groups) if cfg.remove_constant_reward_groups else batch.groups
        metrics["groups/trained"] = len(groups)
        advantages = compute_advantages(groups)
        data, _ = assemble_training_data(groups, advantages)
        self._transcript(batch, groups, advantages)
        metrics["datums"] = len(data)
        metrics["tokens/action"] = int(sum(float(d.loss_fn_inputs["mask"].to_numpy().sum()) for d in data))
        metrics["tokens/input"] = sum(d.model_input.length for d in data)
        if not data:
            metrics["no_update"] = True
            return metrics, 0.0
        if self.reference is not None:
            metrics.update(await incorporate_kl_penalty(data, self.reference, cfg.kl_penalty_coef))
        t0 = time.monotonic()
        from cookbook_cli.rl.sampler import train_on_batch

        train_logprobs, optim_metrics = await train_on_batch(
            self.tc, data, cfg.loss_fn, cfg.loss_fn_config, cfg.adam.params(lr)
        )
        seconds = time.monotonic() - t0
        metrics.update(optim_metrics)
        if train_logprobs:
            metrics.update(kl_sample_train(data, train_logprobs))
        for k, v in metrics.items():
            if k.startswith("optim/") and isinstance(v, float) and not math.isfinite(v):
                raise CookbookError(f"step {batch.step}: training produced a non-finite {k} ({v}); lower the learning rate")
        return metrics, seconds

    def _transcript(self, batch: StepBatch, groups: list[TrajectoryGroup], advantages: list[list[float]]) -> None:
        from cookbook_cli.rl.transcripts import render_groups, write_transcript

        n = self.cfg.num_groups_to_log
        if n <= 0:
            return
        extra = []
        for g in groups[:n]:
            i = next(i for i, bg in enumerate(batch.groups) if bg is g)
            extra.append({"sampled_at_version": batch.versions[i], "staleness": batch.step - batch.versions[i]})
        text = render_groups(groups[:n], advantages[:n], self.tokenizer, f"{self.name}: step {batch.step}", extra)
        path = self.run.subdir("transcripts") / f"step_{batch.step:06d}.html"
        write_transcript(path, text)
        self.run.log_html("transcripts", path, batch.step)
