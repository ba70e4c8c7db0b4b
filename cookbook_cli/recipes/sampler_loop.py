"""The sampler loop every on-policy recipe shares (`train rl`, on-policy
`train distill`), and the config fields of such a recipe (`SamplerConfig`):
the recipe says what one step does with its groups; this module runs the steps.

Each step: collect the step's groups from the `OffPolicyPipeline` (at most K
steps stale), hand them to the recipe's `train_step`, give the sampler the new
weights, log the step's metrics (with the timing ones and, when due, the
recipe's evaluation), checkpoint every
`save_every` steps and, at the end, save the final checkpoint with sampler
weights. A dataset that runs out ends the run early; an env that raises in
every group, or a run in which no step trained anything, ends it with one line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.checkpoints import Position
from cookbook_cli.optim import LR_SCHEDULES
from cookbook_cli.run.config import RunConfig, at_least

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import TrainingClient
    from cookbook_cli.rl.sampler import StepBatch
    from cookbook_cli.rl.types import RLDataset
    from cookbook_cli.run.lifecycle import Run

@chz.chz
class SamplerConfig(RunConfig):
    """The fields of a recipe that trains on groups its own policy samples (rl, on-policy distill)."""

    lr_schedule: str = chz.field(default="constant", doc="the decay after warmup", metadata={"choices": LR_SCHEDULES})
    group_size: int = chz.field(default=4, doc="completions sampled per prompt (rewards are centred within a group)")
    groups_per_batch: int = chz.field(default=8, doc="groups (prompts) per training step")
    max_steps_off_policy: int = chz.field(default=0, doc="0: synchronous on-policy; K > 0: asynchronous, groups at most K steps stale")
    loss_fn: str = chz.field(default="importance_sampling", doc="importance_sampling, ppo, cispo, dro or a registered loss (cookbook losses list)")
    loss_fn_config: dict[str, float] | None = chz.field(default=None, doc="the loss's config, e.g. loss_fn_config.clip_low_threshold=0.9")
    max_tokens: int | None = chz.field(default=None, doc="sampled tokens per completion; default: the env's")
    temperature: float = chz.field(default=1.0, doc="sampling temperature")
    num_groups_to_log: int = chz.field(default=2, doc="groups per step in the HTML transcripts (0: none)")

    RESUME_MAY_CHANGE = (*RunConfig.RESUME_MAY_CHANGE, "num_groups_to_log")

    @chz.validate
    def _check_sampler_fields(self) -> None:
        check_sampler_fields(self)

    def trains_on_policy(self) -> bool:
        return True

    def resolve_more(self, resolved: RunConfig) -> dict[str, Any]:
        from cookbook_cli.engines.losses import check_loss

        check_loss(self.loss_fn, self.loss_fn_config)  # unknown names and keys fail here, before anything loads
        return {}


def check_sampler_fields(config: SamplerConfig) -> None:
    at_least(config, 1, "group_size", "groups_per_batch", "max_tokens")
    at_least(config, 0, "max_steps_off_policy", "num_groups_to_log")
    if config.temperature < 0:
        raise CookbookError(f"temperature must be >= 0, got {config.temperature}")


def check_finite(step: int, metrics: dict[str, Any]) -> None:
    """A step whose optimizer metrics are not finite stops the run in one line."""
    import math

    for k, v in metrics.items():
        if k.startswith("optim/") and isinstance(v, float) and not math.isfinite(v):
            raise CookbookError(f"step {step}: training produced a non-finite {k} ({v}); lower the learning rate")


def evaluation(config: RunConfig, evaluators: list[Any], renderer: Any, tc: TrainingClient) -> Callable[[int, bool], Awaitable[dict[str, Any]]]:
    """The loop's `evaluate(step, final)`: the config's evaluators every
    `eval_every` steps and at the end, on the current weights."""

    async def evaluate(step: int, final: bool) -> dict[str, Any]:
        from cookbook_cli.evaluation.runner import evaluate_with_client

        if not evaluators or not (final or (config.eval_every and step % config.eval_every == 0)):
            return {}
        return await evaluate_with_client(evaluators, renderer, await tc.save_weights_and_get_sampling_client_async(), config.seed)

    return evaluate


TrainStep = Callable[["StepBatch"], Awaitable[tuple[dict[str, Any], float]]]
"""`train_step(batch) -> (metrics, seconds spent training)`; metrics holding
`no_update` mean the step trained nothing."""


@dataclass
class LoopSettings:
    title: str  # the progress bar's label, e.g. "train rl (arithmetic)"
    source: str  # what the groups come from, in messages: "env 'arithmetic'"
    groups_per_batch: int
    max_steps_off_policy: int
    save_every: int
    progress: bool | None = None  # True a rich bar, False plain lines, None a bar on a terminal
    bar_fields: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda m: {})
    # evaluate(step, final) -> metrics to log with the step (before its update) or, final, in a last row
    evaluate: Callable[[int, bool], Awaitable[dict[str, Any]]] | None = None


@dataclass
class LoopResult:
    steps_done: int
    metrics: list[dict[str, Any]] = field(default_factory=list)  # rows of this invocation
    final_checkpoint: dict[str, Any] | None = None


async def save_checkpoint(run: Run, step: int, batches_per_epoch: int, final: bool) -> dict[str, Any]:
    """Save the state (and, at the end, sampler weights) without blocking the
    event loop, then record it."""
    pending = run.checkpointer.submit(Position.of(step, batches_per_epoch), final=final)
    await pending.state
    if pending.sampler is not None:
        await pending.sampler
    return run.checkpointer.finish(pending)


async def run_sampler_loop(
    run: Run,
    tc: TrainingClient,
    dataset: RLDataset,
    start: Position,
    total_steps: int,
    make_completer: Any,
    train_step: TrainStep,
    settings: LoopSettings,
    t_start: float,
) -> LoopResult:
    """Train from `start` to `total_steps` (see the module docstring)."""
    from cookbook_cli.rl.sampler import OffPolicyPipeline
    from cookbook_cli.run.progress import StepProgress

    batches_per_epoch = len(dataset)
    result = LoopResult(start.step)
    sampler = await tc.save_weights_and_get_sampling_client_async()
    pipeline = OffPolicyPipeline(
        dataset, start.batch, settings.groups_per_batch, settings.max_steps_off_policy, make_completer, sampler, start.step
    )
    step = start.step
    pipeline.start()
    try:
        plain = None if settings.progress is None else not settings.progress
        with StepProgress(total_steps, settings.title, start=start.step, plain=plain) as bar:
            while step < total_steps:
                t0 = time.monotonic()
                batch = await pipeline.next_batch(step)
                if not batch.groups:
                    if batch.dropped_groups:
                        errors = ", ".join(f"{n} {e}" for e, n in batch.env_errors.most_common(3))
                        raise CookbookError(
                            f"{settings.source} raised in every one of the last {batch.dropped_groups} groups ({errors}); "
                            "see the warnings above for its messages"
                        )
                    bar.log(f"the dataset ran out after {step} steps")
                    break
                evaluation = await settings.evaluate(step, False) if settings.evaluate else {}
                metrics, train_seconds = await train_step(batch)
                metrics.update(evaluation)
                if "no_update" in metrics:
                    bar.log(f"warning: step {step} trained nothing: its groups sampled no tokens to train on")
                t1 = time.monotonic()
                pipeline.publish(await tc.save_weights_and_get_sampling_client_async(), step + 1)
                metrics["time/sampler_update"] = time.monotonic() - t1
                metrics["time/train"] = train_seconds
                metrics["time/step"] = time.monotonic() - t0
                metrics["progress/done_frac"] = (step + 1) / total_steps
                metrics["elapsed"] = time.monotonic() - t_start
                run.log_metrics(step, metrics)  # before the checkpoint that covers it
                result.metrics.append({"step": step, **metrics})
                step += 1
                result.steps_done = step
                if step < total_steps and settings.save_every and step % settings.save_every == 0:
                    await save_checkpoint(run, step, batches_per_epoch, final=False)
                bar.update(step, **settings.bar_fields(metrics), **{"s/step": metrics["time/step"]})
            trained = [r for r in run.metrics() if "no_update" not in r]
            if step > start.step and not trained:
                raise CookbookError(
                    f"no step of the run trained anything: every batch sampled no tokens to train on (see {run.dir.metrics_path}); "
                    "check max_tokens and the renderer's stop sequences"
                )
            if step > start.step or run.resume_from is None:
                final = await settings.evaluate(step, True) if settings.evaluate else {}
                if final:
                    run.log_metrics(step, {**final, "final": True})
                    result.metrics.append({"step": step, **final, "final": True})
                result.final_checkpoint = await save_checkpoint(run, step, batches_per_epoch, final=True)
    finally:
        await pipeline.stop()
    return result
