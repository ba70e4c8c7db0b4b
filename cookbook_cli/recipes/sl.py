"""Supervised fine-tuning: `cookbook train sl`, or `train(SLConfig(...))` from Python.

The loop, against the engine protocol only (so it runs on every engine):

- step s trains on batch s % B of epoch s // B (B batches per epoch; each epoch
  reshuffled with `set_epoch(epoch)`), at the scheduled learning rate;
- forward_backward and optim_step are submitted back to back, then the next
  batch is built while the engine works, and the previous step's results are
  collected only after the next step has been submitted;
- every `eval_every` steps the test split's NLL is computed before that step's
  update (its forward passes are queued ahead of the step) and once more at the
  end;
- every `save_every` steps and at the end the training state is saved and, once
  written, recorded in checkpoints.jsonl with the step/epoch/batch to resume from;
- one row per step in metrics.jsonl, and a final row (step = total steps) with
  the final evaluation.

A run killed at any moment resumes from its last recorded checkpoint: the data
order is a function of the seed and the step alone, the optimizer state comes
back with the weights, and metrics after the checkpoint are dropped and
recomputed, so each step appears exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import RegistryFactory, config_to_json
from cookbook_cli.conversations import located
from cookbook_cli.evaluation import in_training as _ev
from cookbook_cli.data.builders import ConversationsBuilder, SupervisedDatasetBuilder
from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import learning_rate_at
from cookbook_cli.plugins import registry
from cookbook_cli.run.checkpoints import PendingCheckpoint, Position
from cookbook_cli.run.epoch_config import EpochRunConfig, resolve_run_defaults, total_steps_of
from cookbook_cli.types import LossReduction, TrainOnWhat

if TYPE_CHECKING:
    from cookbook_cli.data.builders import SupervisedData
    from cookbook_cli.data.supervised import BatchStats, ConversationDataset, SupervisedBatch
    from cookbook_cli.engines.protocol import APIFuture, ServiceClient, TrainingClient
    from cookbook_cli.renderers.base import Renderer


@chz.chz
class SLConfig(EpochRunConfig):
    """Supervised fine-tuning on conversations (the run's fields: `EpochRunConfig`)."""

    dataset: SupervisedDatasetBuilder = chz.field(
        default_factory=ConversationsBuilder,
        meta_factory=RegistryFactory(registry.dataset_builders, ConversationsBuilder, kinds=("supervised",), used_by="`train sl`"),
        doc="dataset builder (cookbook datasets list); its fields are dataset.<field>",
    )
    train_on_what: str = chz.field(default="all_assistant_messages", doc="which tokens are trained (TrainOnWhat)")
    loss_reduction: str = chz.field(
        default="mean",
        doc="mean: each example's token losses averaged, so every example weighs the same (tinker-cookbook's default); sum: token losses summed",
    )
    evaluators: list[str] = chz.field(
        default_factory=list, doc="evaluators run with test NLL, logged as test/<name>/<metric>, e.g. 'arithmetic max_tokens=1' (cookbook evaluators list)"
    )
    pipeline: bool = chz.field(default=True, doc="overlap engine work with data preparation (false: strictly sequential)")

    @chz.validate
    def _check(self) -> None:
        TrainOnWhat.parse(self.train_on_what)
        LossReduction.parse(self.loss_reduction)


def resolve(config: SLConfig) -> SLConfig:
    """Fill in the defaults that depend on other fields: model, renderer,
    learning rate and log directory."""
    data = config.dataset.describe() if not isinstance(config.dataset, ConversationsBuilder) or config.dataset.path else "sample"
    return resolve_run_defaults(config, "sl", data)


#: Settings a resumed run may change: where it lives, how it overlaps work, how
#: long it runs (the schedule then spans the new total), how often it saves and
#: what it evaluates.
RESUME_MAY_CHANGE = ("log_dir", "pipeline", "max_steps", "save_every", "evaluators")


def config_json(config: SLConfig) -> dict[str, Any]:
    return config_to_json(config, {"dataset": registry.dataset_builders})


# -- results -----------------------------------------------------------------------------


@dataclass
class SLResult:
    log_dir: Path
    total_steps: int
    start_step: int
    first_loss: float | None = None
    last_loss: float | None = None
    first_test_nll: float | None = None
    final_test_nll: float | None = None
    elapsed: float = 0.0
    final_checkpoint: dict[str, Any] | None = None
    resumed_from: int | None = None
    truncated: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)


def _weighted_nll(outputs: Any, datums: list[Any]) -> tuple[float, float]:
    """(sum of -logprob * weight, sum of weights) over a forward(-backward) output."""
    import numpy as np

    total = 0.0
    weight = 0.0
    for out, d in zip(outputs.loss_fn_outputs, datums):
        lp = np.asarray(out["logprobs"].to_numpy(), dtype=np.float64).reshape(-1)
        w = np.asarray(d.loss_fn_inputs["weights"].to_numpy(), dtype=np.float64).reshape(-1)
        total += float(-(lp * w).sum())
        weight += float(w.sum())
    return total, weight


class _Evaluator:
    """Test-split NLL: forward passes queued on the training client."""

    def __init__(self, test: ConversationDataset | None) -> None:
        self.batches = [b for b in test.all_batches() if b.datums] if test is not None else []

    def submit(self, client: TrainingClient, wait_each: bool = False) -> list[tuple[APIFuture[Any], list[Any]]] | None:
        if not self.batches:
            return None
        pending = []
        for b in self.batches:
            fut = client.forward(b.datums, "cross_entropy")
            if wait_each:
                fut.result()
            pending.append((fut, b.datums))
        return pending

    @staticmethod
    def finish(pending: list[tuple[APIFuture[Any], list[Any]]] | None) -> dict[str, float]:
        if pending is None:
            return {}
        total = weight = 0.0
        for fut, datums in pending:
            t, w = _weighted_nll(fut.result(), datums)
            total += t
            weight += w
        return {"test_nll": total / weight} if weight > 0 else {}


@dataclass
class _Step:
    step: int
    position: Position
    lr: float
    stats: BatchStats
    datums: list[Any]
    fb: APIFuture[Any] | None = None
    opt: APIFuture[Any] | None = None
    evaluation: list[Any] | None = None
    eval_client: Any = None  # a sampling client of the weights before this step, for the evaluators
    checkpoint: PendingCheckpoint | None = None
    submitted: float = 0.0


# -- the loop ----------------------------------------------------------------------------------


def prepare_data(cfg: SLConfig) -> tuple[Renderer, SupervisedData, ConversationDataset | None, int]:
    """Everything checked before a model loads or a file is written: the
    renderer, both splits (loadable, expressible by the renderer, something to
    train) and the number of steps."""
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer

    assert cfg.model is not None and cfg.renderer is not None
    renderer = get_renderer(cfg.renderer, tokenizer_for_model(cfg.model, cfg.engine))
    train_ds, test_ds = cfg.dataset.build(
        renderer, cfg.batch_size, cfg.max_length, cfg.train_on_what, cfg.seed, loss_reduction=cfg.loss_reduction
    )
    for ds in (train_ds, test_ds):
        if ds is not None:
            check_renderer_can_express(renderer, ds)
    return renderer, train_ds, test_ds, total_steps_of(cfg, len(train_ds))


def check_renderer_can_express(renderer: Renderer, ds: SupervisedData) -> None:
    """Tools or thinking in the data that the chat format cannot write fail now,
    not at the step whose batch holds them. A streamed dataset has no list of
    conversations: it checks each row as it parses it (its first rows in
    `validate`, before a model loads)."""
    conversations = getattr(ds, "conversations", None)
    if conversations is None:
        return
    for row, conv in enumerate(conversations):
        try:
            renderer.check_messages(conv.messages, conv.tools or None)
        except CookbookError as e:
            raise located(conv.source, e, f"{ds.name} row {row}") from None


def train(
    config: SLConfig,
    if_exists: str = "fail",
    service: ServiceClient | None = None,
    progress: bool | None = None,
    on_log: Callable[[str], None] | None = None,
    argv: list[str] | None = None,
    log_to: Sequence[str] = (),
    logger_options: Mapping[str, Mapping[str, str]] | None = None,
) -> SLResult:
    """Run supervised fine-tuning; returns what happened.

    `if_exists`: resume, overwrite, fail or ask (for a log directory that holds a
    run). `service` replaces the engine's client (tests, benchmarks). `progress`:
    True a rich bar, False plain lines, None (default) a bar on a terminal only.
    `on_log` receives the run's messages (default: print). `argv`: the command
    line, quoted back when the run is interrupted. `log_to` / `logger_options`:
    experiment trackers beside metrics.jsonl (`cookbook loggers list`)."""
    from cookbook_cli.run.lifecycle import RunSettings, open_run
    from cookbook_cli.run.progress import StepProgress

    cfg = resolve(config)
    assert cfg.log_dir is not None and cfg.model is not None and cfg.renderer is not None and cfg.learning_rate is not None
    renderer, train_ds, test_ds, total_steps = prepare_data(cfg)
    evaluators = _ev.prepare_evaluators(cfg.evaluators, renderer)
    batches_per_epoch = len(train_ds)
    settings = RunSettings("sl", cfg.log_dir, config_json(cfg), cfg.engine, cfg.engine_options, if_exists, RESUME_MAY_CHANGE, argv, log_to, logger_options or {})
    with open_run(settings, service, on_log) as run:
        start = run.start_position(batches_per_epoch, total_steps)
        t_start = time.monotonic()
        client = run.training_client(cfg.model, cfg.lora_rank, cfg.seed)
        checkpointer = run.checkpointer
        evaluator = _Evaluator(test_ds)
        result = SLResult(run.path, total_steps, start.step, resumed_from=start.step if run.resume_from else None)
        earlier = run.metrics()
        losses = [r["loss"] for r in earlier if "loss" in r]
        evals = [r["test_nll"] for r in earlier if "test_nll" in r]
        result.first_loss = losses[0] if losses else None
        result.first_test_nll = evals[0] if evals else None
        updates = [len(losses)]

        def lr_at(step: int) -> float:
            return learning_rate_at(step, total_steps, cfg.learning_rate, cfg.lr_schedule, cfg.warmup_steps, cfg.min_lr_ratio)

        def prepare(step: int) -> _Step:
            pos = Position.of(step, batches_per_epoch)
            if train_ds.epoch_seed != pos.epoch:
                train_ds.set_epoch(pos.epoch)
            batch: SupervisedBatch = train_ds.build_batch(pos.batch)
            # A batch whose every example was skipped (nothing trained within
            # max_length) becomes a step without an update, logged as such.
            return _Step(step, pos, lr_at(step), batch.stats, batch.datums)

        def eval_due(step: int) -> bool:
            return cfg.eval_every > 0 and step % cfg.eval_every == 0

        def save_due(done: int) -> bool:
            return done < total_steps and cfg.save_every > 0 and done % cfg.save_every == 0

        def submit(s: _Step) -> None:
            s.submitted = time.monotonic()
            if eval_due(s.step):
                s.evaluation = evaluator.submit(client, wait_each=not cfg.pipeline)
                if evaluators:
                    s.eval_client = client.save_weights_and_get_sampling_client()
            if s.datums:
                s.fb = client.forward_backward(s.datums, "cross_entropy")
                if not cfg.pipeline:  # strictly sequential: wait for every call before the next
                    s.fb.result()
                s.opt = client.optim_step(cfg.adam.params(s.lr))
                if not cfg.pipeline:
                    s.opt.result()
            if save_due(s.step + 1):
                s.checkpoint = checkpointer.submit(Position.of(s.step + 1, batches_per_epoch))

        last_done = [time.monotonic()]

        def finish(s: _Step, bar: StepProgress) -> None:
            evaluation = _Evaluator.finish(s.evaluation)
            evaluation.update(_ev.run_evaluators(evaluators, renderer, s.eval_client, cfg.seed))
            loss: float | None = None
            opt = None
            if s.fb is not None and s.opt is not None:
                nll_sum, weight = _weighted_nll(s.fb.result(), s.datums)
                opt = s.opt.result()
                loss = nll_sum / weight if weight > 0 else None
            now = time.monotonic()
            step_time = now - last_done[0]
            last_done[0] = now
            row: dict[str, Any] = {
                "epoch": s.position.epoch,
                "batch": s.position.batch,
                **({"loss": loss} if loss is not None else {"no_update": True}),
                "lr": s.lr,
                **s.stats.as_metrics(),
                "tokens_per_s": s.stats.tokens / step_time if step_time > 0 else None,
                "step_time": step_time,
                "elapsed": now - t_start,
            }
            opt_metrics = getattr(opt, "metrics", None) or {}
            if "grad_norm" in opt_metrics:
                row["grad_norm"] = float(opt_metrics["grad_norm"])
            row.update(evaluation)
            run.log_metrics(s.step, row)
            result.metrics.append({"step": s.step, **row})
            if loss is None:
                bar.log(f"warning: step {s.step} trained nothing: all {s.stats.skipped} examples of its batch had no trained token within max_length")
            else:
                updates[0] += 1
            result.truncated += s.stats.truncated
            if loss is not None:
                if result.first_loss is None:
                    result.first_loss = loss
                result.last_loss = loss
            if "test_nll" in evaluation and result.first_test_nll is None:
                result.first_test_nll = evaluation["test_nll"]
            if s.checkpoint is not None:
                checkpointer.finish(s.checkpoint)
            bar.update(
                s.step + 1,
                loss=loss,
                lr=s.lr,
                **{"tok/s": round(row["tokens_per_s"]) if row["tokens_per_s"] else None},
                **({"test_nll": evaluation["test_nll"]} if "test_nll" in evaluation else {}),
            )

        with StepProgress(total_steps, "train sl", start=start.step, plain=None if progress is None else not progress) as bar:
            pending: _Step | None = None
            current = prepare(start.step) if start.step < total_steps else None
            while current is not None:
                if cfg.pipeline:
                    submit(current)
                    following = prepare(current.step + 1) if current.step + 1 < total_steps else None
                    if pending is not None:
                        finish(pending, bar)
                    pending, current = current, following
                else:
                    submit(current)
                    finish(current, bar)
                    current = prepare(current.step + 1) if current.step + 1 < total_steps else None
            if pending is not None:
                finish(pending, bar)
            if updates[0] == 0:
                raise CookbookError(
                    f"no step of the run trained anything: every example was skipped (see `skipped` in {run.dir.metrics_path}); "
                    "raise --max-length or check which messages train_on_what selects"
                )

            # The end: final evaluation, then the final checkpoint (state + sampler weights).
            final = Position.of(total_steps, batches_per_epoch)
            evaluation = _Evaluator.finish(evaluator.submit(client))
            if evaluators:
                evaluation.update(_ev.run_evaluators(evaluators, renderer, client.save_weights_and_get_sampling_client(), cfg.seed))
            if evaluation:
                run.log_metrics(total_steps, {"epoch": final.epoch, "batch": final.batch, **evaluation, "final": True})
                if "test_nll" in evaluation:
                    result.final_test_nll = evaluation["test_nll"]
                    if result.first_test_nll is None:
                        result.first_test_nll = result.final_test_nll
                    bar.log(f"final test_nll={evaluation['test_nll']:.4g}")
            result.final_checkpoint = run.save_final(final)
        result.elapsed = time.monotonic() - t_start
        return result
