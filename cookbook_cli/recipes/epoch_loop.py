"""The epoch loop: a recipe that trains in epochs over a fixed dataset
(`train dpo`, and any plugin recipe) says what one step does with its batch;
this module runs the steps, through the run lifecycle.

Step s trains on batch s % B of epoch s // B (B batches per epoch; the data
reshuffled with `set_epoch(epoch)`), at the scheduled learning rate. Every
`eval_every` steps, before that step's update, and once at the end: the
recipe's held-out `evaluate` and the config's evaluators. Checkpoints every
`save_every` steps and at the end (state + sampler weights), resumable
exactly; one metrics row per step; a run in which no step trained anything
ends with one line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.checkpoints import Position

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import TrainingClient
    from cookbook_cli.run.config import EpochConfig
    from cookbook_cli.run.lifecycle import Run, RunSettings
    from cookbook_cli.run.options import RunOptions


class EpochData(Protocol):
    """A dataset in batches: `len()` batches per epoch, `set_epoch(e)` reshuffles."""

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def build_batch(self, index: int) -> Any: ...


@dataclass
class EpochSteps:
    """What a recipe does in the epoch loop.

    `train(client, batch, lr) -> metrics`: one update (metrics holding
    `no_update` mean the batch trained nothing). `evaluate(client) -> metrics`:
    held-out metrics, before the update every `eval_every` steps and at the
    end. `start(run, client, position)`: once, when the client exists (e.g. load
    initial weights, compute references). `bar_fields(row)`: what the progress
    bar shows. `nothing_trained`: the end of the message of a run that trained
    nothing (what to change)."""

    train: Callable[[TrainingClient, Any, float], dict[str, Any]]
    evaluate: Callable[[TrainingClient], dict[str, Any]] | None = None
    start: Callable[[Run, TrainingClient, Position], None] | None = None
    bar_fields: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda row: {})
    nothing_trained: str = "every example was skipped (raise --max-length)"


@dataclass
class EpochResult:
    log_dir: Path
    total_steps: int
    start_step: int
    metrics: list[dict[str, Any]] = field(default_factory=list)  # rows of this invocation
    earlier: list[dict[str, Any]] = field(default_factory=list)  # rows of the run before this invocation
    final_eval: dict[str, Any] = field(default_factory=dict)
    final_checkpoint: dict[str, Any] | None = None
    elapsed: float = 0.0


def run_epoch_loop(
    settings: RunSettings, cfg: EpochConfig, data: EpochData, total_steps: int, steps: EpochSteps, renderer: Any = None,
) -> EpochResult:
    """Open the run and train from its start (or resumed) position to `total_steps`."""
    from cookbook_cli.evaluation import in_training as _ev
    from cookbook_cli.run.lifecycle import open_run
    from cookbook_cli.run.progress import StepProgress

    options: RunOptions = settings.options
    assert cfg.model is not None and cfg.lora_rank is not None
    evaluators = _ev.prepare_evaluators(cfg.evaluators, renderer) if cfg.evaluators else []
    bpe = len(data)

    def evaluation(client: TrainingClient) -> dict[str, Any]:
        out = steps.evaluate(client) if steps.evaluate is not None else {}
        if evaluators:
            out.update(_ev.run_evaluators(evaluators, renderer, client.save_weights_and_get_sampling_client(), cfg.seed))
        return out

    with open_run(settings) as run:
        start = run.start_position(bpe, total_steps)
        t_start = time.monotonic()
        client = run.training_client(cfg.model, cfg.lora_rank, cfg.seed)
        if steps.start is not None:
            steps.start(run, client, start)
        result = EpochResult(run.path, total_steps, start.step, earlier=run.metrics())
        plain = None if options.progress is None else not options.progress
        with StepProgress(total_steps, f"train {settings.recipe}", start=start.step, plain=plain) as bar:
            for step in range(start.step, total_steps):
                t0 = time.monotonic()
                pos = Position.of(step, bpe)
                if getattr(data, "epoch_seed", None) != pos.epoch:
                    data.set_epoch(pos.epoch)
                batch = data.build_batch(pos.batch)
                lr = cfg.learning_rate_at(step, total_steps)
                row: dict[str, Any] = {"epoch": pos.epoch, "batch": pos.batch}
                row.update(evaluation(client) if cfg.eval_every and step % cfg.eval_every == 0 else {})
                row.update(steps.train(client, batch, lr))
                if "no_update" in row:
                    bar.log(f"warning: step {step} trained nothing: {steps.nothing_trained}")
                step_time = time.monotonic() - t0
                stats = getattr(batch, "stats", None)
                if stats is not None:
                    row.update(stats.as_metrics(), tokens_per_s=stats.tokens / step_time if step_time > 0 else None)
                row.update(lr=lr, step_time=step_time, elapsed=time.monotonic() - t_start)
                run.log_metrics(step, row)
                result.metrics.append({"step": step, **row})
                if step + 1 < total_steps and cfg.save_every and (step + 1) % cfg.save_every == 0:
                    run.checkpointer.save(Position.of(step + 1, bpe))
                bar.update(step + 1, lr=lr, **steps.bar_fields(row))
            if not any("no_update" not in r for r in run.metrics() if not r.get("final")):
                raise CookbookError(f"no step of the run trained anything: {steps.nothing_trained}")
            final = Position.of(total_steps, bpe)
            result.final_eval = evaluation(client)
            if result.final_eval:
                run.log_metrics(total_steps, {"epoch": final.epoch, "batch": final.batch, **result.final_eval, "final": True})
            result.final_checkpoint = run.save_final(final)
        result.elapsed = time.monotonic() - t_start
        return result
