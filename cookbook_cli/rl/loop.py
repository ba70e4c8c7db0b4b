"""The sampler-driven training loop every on-policy recipe shares (`train rl`,
on-policy `train distill`): the recipe says what one step does with its groups;
this module runs the steps.

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

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.checkpoints import Position

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import TrainingClient
    from cookbook_cli.rl.sampler import StepBatch
    from cookbook_cli.rl.types import RLDataset
    from cookbook_cli.run.lifecycle import Run

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
