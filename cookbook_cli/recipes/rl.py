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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import RegistryFactory, registry_name_of
from cookbook_cli.errors import CookbookError
from cookbook_cli.recipes.contract import Recipe, prepare_run, run_settings
from cookbook_cli.recipes.sampler_loop import SamplerConfig, check_finite, evaluation
from cookbook_cli.run.config import RunConfig
from cookbook_cli.run.options import RunOptions
from cookbook_cli.plugins import registry
from cookbook_cli.rl.arithmetic import ArithmeticBuilder
from cookbook_cli.rl.types import RLDatasetBuilder, TrajectoryGroup

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import SamplingClient, TrainingClient
    from cookbook_cli.rl.sampler import StepBatch
    from cookbook_cli.run.lifecycle import Run

logger = logging.getLogger("cookbook_cli.rl")

@chz.chz
class RLConfig(SamplerConfig):
    """Reinforcement learning on a registered environment (the run's fields: `SamplerConfig`)."""

    env: RLDatasetBuilder = chz.field(
        default_factory=ArithmeticBuilder,
        meta_factory=RegistryFactory(registry.envs, ArithmeticBuilder),
        doc="environment (cookbook envs list); its fields are env.<field>",
    )
    kl_penalty_coef: float = chz.field(default=0.0, doc="KL penalty against the reference model (0: off)")
    kl_reference_model: str | None = chz.field(default=None, doc="reference model of the KL penalty; default: the base model")
    remove_constant_reward_groups: bool = chz.field(default=False, doc="do not train on groups whose episodes all earned the same reward")
    init_from: str | None = chz.field(default=None, doc="start from this checkpoint (a run directory, e.g. an SFT run, or a state path)")

    MORE_STEPS_OPTION = "the env's options (env.<field>, cookbook envs list)"

    @chz.validate
    def _check(self) -> None:
        if self.kl_penalty_coef < 0:
            raise CookbookError(f"kl_penalty_coef must be >= 0, got {self.kl_penalty_coef}")
        if self.group_size == 1:
            raise CookbookError(
                "group_size=1 gives every episode an advantage of 0 (rewards are centred within a group), "
                "so nothing can be learned; use --group-size 2 or more"
            )

    def registries(self) -> dict[str, Any]:
        return {"env": registry.envs}

    def data_label(self) -> str:
        return env_name(self)

    def suggested(self, engine: str) -> dict[str, Any]:
        """On an engine that runs small models offline the env may suggest a
        model, renderer, learning rate and LoRA rank (a toy env suggests a small
        random model that can learn it)."""
        small_models = registry.engines.get(engine).extra.get("small_models", False)
        return self.env.local_defaults() if small_models else {}

    def resolve_more(self, resolved: RunConfig) -> dict[str, Any]:
        super().resolve_more(resolved)
        if self.kl_reference_model is not None and resolved.model is not None:
            from cookbook_cli.local_paths import check_scoring_model

            check_scoring_model(resolved.model, self.kl_reference_model, "kl_reference_model", "give a model (Hub id or folder) with the policy's tokenizer")
        return {"max_tokens": self.max_tokens if self.max_tokens is not None else int(self.env.default_max_tokens)}


def env_name(config: RLConfig) -> str:
    """The registry name of the config's env (its class name when it is not registered)."""
    return registry_name_of(registry.envs, config.env) or type(config.env).__name__


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


def train(config: RLConfig, options: RunOptions | None = None) -> RLResult:
    """Run RL as configured: the library entry point of `cookbook train rl`
    (`RunOptions`: how to run it; tests and benchmarks pass
    `service=cookbook_cli.engines.standin.StandInService(...)`)."""
    return asyncio.run(train_async(config, options))


async def train_async(config: RLConfig, options: RunOptions | None = None) -> RLResult:
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.completers import SamplingClientCompleter
    from cookbook_cli.recipes.sampler_loop import LoopSettings, run_sampler_loop
    from cookbook_cli.rl.types import EnvContext
    from cookbook_cli.run.lifecycle import open_run
    from cookbook_cli.tokenizers import get_tokenizer

    cfg, options = prepare_run("rl", config, options)
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
    total_steps = cfg.total_steps(len(dataset), options.say)
    from cookbook_cli.evaluation.in_training import prepare_evaluators
    from cookbook_cli.preference.reference import resolve_checkpoint

    initial_state = resolve_checkpoint(cfg.init_from, cfg.model, "--init-from") if cfg.init_from else None

    evaluators = prepare_evaluators(cfg.evaluators, renderer)

    with open_run(run_settings("rl", cfg, options)) as run:
        start = run.start_position(len(dataset), total_steps)
        t_start = time.monotonic()
        tc = await run.training_client_async(cfg.model, cfg.lora_rank, cfg.seed)
        if run.resume_from is None and initial_state is not None:  # a resumed run has its own weights
            await (await tc.load_state_async(initial_state)).result_async()
        reference = None
        if cfg.kl_penalty_coef > 0:
            reference = await run.service.create_sampling_client_async(base_model=cfg.kl_reference_model or cfg.model)

        max_tokens, temperature = cfg.max_tokens, cfg.temperature

        def make_completer(client: SamplingClient, rollout_index: int) -> SamplingClientCompleter:
            return SamplingClientCompleter(client, max_tokens, temperature, seed=cfg.seed * 1_000_003 + rollout_index)

        loop = _Loop(cfg, name, run, tc, tokenizer, reference, total_steps)
        settings = LoopSettings(
            f"train rl ({name})", f"env {name!r}", cfg.groups_per_batch, cfg.max_steps_off_policy, cfg.save_every, options.progress,
            lambda m: {"reward": m.get("env/reward/mean"), "stale": m.get("staleness/mean")}, evaluation(cfg, evaluators, renderer, tc),
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
        return self.cfg.learning_rate_at(step, self.total_steps)

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
        check_finite(batch.step, metrics)
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


def summary(config: RLConfig, result: RLResult) -> list[str]:
    """What `cookbook train rl` prints after the run."""
    from cookbook_cli.recipes.report import done_line

    how = "synchronous" if config.max_steps_off_policy == 0 else f"asynchronous, <= {config.max_steps_off_policy} steps off-policy"
    rewards = result.rewards()
    lines = [done_line(result.steps_done - result.start_step, result.elapsed, how=how)]
    if rewards:
        lines.append(f"  mean reward {rewards[0]:.3f} -> {rewards[-1]:.3f}")
    return lines


RECIPE = Recipe(RLConfig, train, summary, aliases={"loss_fn": ("--loss",)})
