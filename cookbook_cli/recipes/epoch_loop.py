"""The epoch loop: a recipe that trains in epochs over a fixed dataset
(`train sl`, `train dpo`, and any plugin recipe) says what one step submits
for its batch; this module runs the steps, through the run lifecycle.

Step s trains on batch s % B of epoch s // B (B batches per epoch; the data
reshuffled with `set_epoch(epoch)`), at the scheduled learning rate. Every
`eval_every` steps the recipe's held-out evaluation is queued before that
step's update (and the config's evaluators get the weights before it), and
once more at the end. Checkpoints every `save_every` steps and at the end
(state + sampler weights) go through the run's one checkpointer, resumable
exactly; one metrics row per step; a run in which no step trained anything
ends with one line.

With `pipeline`, the next step is submitted (and its batch built) before the
previous step's results are read, so the engine never waits for the data;
without it every call is waited for before the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

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


Deferred = Callable[[], dict[str, Any]]
"""What a submitted piece of work returns: a function that waits for it and gives its metrics."""


@dataclass
class EpochSteps:
    """What a recipe does in the epoch loop.

    `train(client, batch, lr) -> deferred metrics`: submits one update (metrics
    holding `no_update` mean the batch trained nothing). `evaluate(client) ->
    deferred metrics`: queues the held-out evaluation. `start(run, client,
    position)`: once, when the client exists (e.g. load initial weights,
    compute references). `bar_fields(row)`: what the progress bar shows.
    `nothing_trained`: the end of the message of a run (or step) that trained
    nothing, saying what to change. `pipeline`: overlap steps (see the module
    docstring). `title`: the progress bar's label (default `train <recipe>`)."""

    train: Callable[[TrainingClient, Any, float], Deferred]
    evaluate: Callable[[TrainingClient], Deferred] | None = None
    start: Callable[[Run, TrainingClient, Position], None] | None = None
    bar_fields: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda row: {})
    nothing_trained: str = "every example was skipped (raise --max-length)"
    pipeline: bool = False
    title: str | None = None


@dataclass
class _Step:
    step: int
    position: Position
    lr: float
    batch: Any
    train: Deferred | None = None
    evaluation: Deferred | None = None
    eval_client: Any = None  # a sampling client of the weights before this step, for the evaluators
    checkpoint: Any = None


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
    resumed: bool = False  # from a checkpoint


@dataclass
class HeldOutResult:
    """A finished run of a recipe judged on held-out data (`test/...` metrics):
    the first and the last evaluation of the whole run, resumed or not."""

    log_dir: Path
    total_steps: int
    start_step: int
    first_eval: dict[str, float] = field(default_factory=dict)
    final_eval: dict[str, float] = field(default_factory=dict)
    final_checkpoint: dict[str, Any] | None = None
    elapsed: float = 0.0
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, done: EpochResult, key: str = "test/accuracy", **extra: Any) -> Self:
        """`done` summarised by its evaluations (the rows holding `key`); `extra`
        fills a subclass's own fields."""
        evals = [r for r in (*done.earlier, *done.metrics) if key in r]
        first = {k: v for k, v in evals[0].items() if k.startswith("test/")} if evals else {}
        final = dict(done.final_eval)
        return cls(done.log_dir, done.total_steps, done.start_step, first or final, final, done.final_checkpoint,
                   done.elapsed, done.metrics, **extra)


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

    with open_run(settings) as run:
        start = run.start_position(bpe, total_steps)
        t_start = time.monotonic()
        client = run.training_client(cfg.model, cfg.lora_rank, cfg.seed)
        if steps.start is not None:
            steps.start(run, client, start)
        result = EpochResult(run.path, total_steps, start.step, earlier=run.metrics(), resumed=run.resume_from is not None)
        last_done = [time.monotonic()]

        def prepare(step: int) -> _Step:
            pos = Position.of(step, bpe)
            if getattr(data, "epoch_seed", None) != pos.epoch:
                data.set_epoch(pos.epoch)
            return _Step(step, pos, cfg.learning_rate_at(step, total_steps), data.build_batch(pos.batch))

        def submit(s: _Step) -> None:
            if cfg.eval_every and s.step % cfg.eval_every == 0:
                s.evaluation = steps.evaluate(client) if steps.evaluate is not None else None
                if evaluators:
                    s.eval_client = client.save_weights_and_get_sampling_client()
            s.train = steps.train(client, s.batch, s.lr)
            if s.step + 1 < total_steps and cfg.save_every and (s.step + 1) % cfg.save_every == 0:
                s.checkpoint = run.checkpointer.submit(Position.of(s.step + 1, bpe))

        def finish(s: _Step, bar: StepProgress) -> None:
            row: dict[str, Any] = {"epoch": s.position.epoch, "batch": s.position.batch}
            row.update(s.evaluation() if s.evaluation is not None else {})
            if s.eval_client is not None:
                row.update(_ev.run_evaluators(evaluators, renderer, s.eval_client, cfg.seed))
            assert s.train is not None
            row.update(s.train())
            if "no_update" in row:
                bar.log(f"warning: step {s.step} trained nothing: {steps.nothing_trained}")
            now = time.monotonic()
            step_time, last_done[0] = now - last_done[0], now
            stats = getattr(s.batch, "stats", None)
            if stats is not None:
                row.update(stats.as_metrics(), tokens_per_s=stats.tokens / step_time if step_time > 0 else None)
            row.update(lr=s.lr, step_time=step_time, elapsed=now - t_start)
            run.log_metrics(s.step, row)  # before the checkpoint that covers it
            result.metrics.append({"step": s.step, **row})
            if s.checkpoint is not None:
                run.checkpointer.finish(s.checkpoint)
            bar.update(s.step + 1, lr=s.lr, **steps.bar_fields(row))

        plain = None if options.progress is None else not options.progress
        with StepProgress(total_steps, steps.title or f"train {settings.recipe}", start=start.step, plain=plain) as bar:
            pending: _Step | None = None
            current = prepare(start.step) if start.step < total_steps else None
            while current is not None:
                submit(current)
                following = prepare(current.step + 1) if current.step + 1 < total_steps else None
                if steps.pipeline:
                    if pending is not None:
                        finish(pending, bar)
                    pending = current
                else:
                    finish(current, bar)
                current = following
            if pending is not None:
                finish(pending, bar)
            if not any("no_update" not in r for r in run.metrics() if not r.get("final")):
                raise CookbookError(f"no step of the run trained anything: {steps.nothing_trained}")

            # The end: final evaluation, then the final checkpoint (state + sampler weights).
            final = Position.of(total_steps, bpe)
            result.final_eval = steps.evaluate(client)() if steps.evaluate is not None else {}
            if evaluators:
                result.final_eval.update(_ev.run_evaluators(evaluators, renderer, client.save_weights_and_get_sampling_client(), cfg.seed))
            if result.final_eval:
                run.log_metrics(total_steps, {"epoch": final.epoch, "batch": final.batch, **result.final_eval, "final": True})
            result.final_checkpoint = run.save_final(final)
        result.elapsed = time.monotonic() - t_start
        return result


def grad_norm_of(optim_result: Any) -> dict[str, float]:
    """`{"grad_norm": ...}` from an optim_step result whose engine reports it, else {}."""
    value = (getattr(optim_result, "metrics", None) or {}).get("grad_norm")
    return {"grad_norm": float(value)} if value is not None else {}
