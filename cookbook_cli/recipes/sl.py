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
from cookbook_cli.data.builders import ConversationsBuilder, SupervisedDatasetBuilder
from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import AdamConfig, check_schedule, learning_rate_at
from cookbook_cli.plugins import registry
from cookbook_cli.run.checkpoints import PendingCheckpoint, Position
from cookbook_cli.types import TrainOnWhat

if TYPE_CHECKING:
    from cookbook_cli.data.supervised import BatchStats, ConversationDataset, SupervisedBatch
    from cookbook_cli.engines.protocol import APIFuture, ServiceClient, TrainingClient
    from cookbook_cli.renderers.base import Renderer


@chz.chz
class SLConfig:
    """Supervised fine-tuning on conversations."""

    log_dir: str | None = chz.field(default=None, doc="run directory; default runs/sl-<dataset>-<model>-<time>")
    engine: str = chz.field(default="local", doc="training engine (cookbook engines list)")
    model: str | None = chz.field(default=None, doc="base model; default follows the engine and renderer")
    renderer: str | None = chz.field(default=None, doc="chat format; default: the model's recommended renderer")
    dataset: SupervisedDatasetBuilder = chz.field(
        default_factory=ConversationsBuilder,
        meta_factory=RegistryFactory(
            registry.dataset_builders, ConversationsBuilder, kinds=("supervised",), default_kind="supervised", purpose="train sl"
        ),
        doc="dataset builder (cookbook datasets list); its fields are dataset.<field>",
    )
    train_on_what: str = chz.field(default="all_assistant_messages", doc="which tokens are trained (TrainOnWhat)")
    batch_size: int = chz.field(default=8, doc="conversations per step")
    learning_rate: float | None = chz.field(default=None, doc="peak learning rate; default depends on the model")
    lr_schedule: str = chz.field(default="linear", doc="linear, cosine or constant")
    warmup_steps: int = chz.field(default=0, doc="linear warmup steps")
    min_lr_ratio: float = chz.field(default=0.0, doc="linear/cosine decay towards this fraction of the peak")
    epochs: int = chz.field(default=1, doc="passes over the training split")
    max_steps: int | None = chz.field(default=None, doc="stop after this many steps")
    max_length: int | None = chz.field(default=2048, doc="truncate examples to this many tokens")
    lora_rank: int = chz.field(default=32, doc="LoRA rank (0: full fine-tuning where the engine allows it)")
    eval_every: int = chz.field(default=20, doc="test NLL every N steps (0: only at the end)")
    evaluators: list[str] = chz.field(
        default_factory=list, doc="evaluators run with test NLL, logged as test/<name>/<metric>, e.g. 'arithmetic max_tokens=1' (cookbook evaluators list)"
    )
    save_every: int = chz.field(default=20, doc="checkpoint every N steps (0: only at the end)")
    seed: int = chz.field(default=0, doc="data order, test split and adapter initialisation")
    adam: AdamConfig = chz.field(default_factory=AdamConfig, doc="optimizer")
    engine_options: dict[str, str] = chz.field(default_factory=dict, doc="passed to the engine (e.g. device, dtype)")
    pipeline: bool = chz.field(default=True, doc="overlap engine work with data preparation (false: strictly sequential)")

    @chz.validate
    def _check(self) -> None:
        TrainOnWhat.parse(self.train_on_what)
        check_schedule(self.lr_schedule, self.warmup_steps, self.min_lr_ratio)
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise CookbookError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "save_every", "lora_rank"):
            if getattr(self, name) < 0:
                raise CookbookError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise CookbookError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_length is not None and self.max_length < 2:
            raise CookbookError(f"max_length must be at least 2, got {self.max_length}")
        if self.learning_rate is not None and self.learning_rate < 0:
            raise CookbookError(f"learning_rate must be >= 0, got {self.learning_rate}")


def resolve(config: SLConfig) -> SLConfig:
    """Fill in the defaults that depend on other fields: model, renderer,
    learning rate and log directory."""
    from cookbook_cli import models
    from cookbook_cli.run.lifecycle import check_log_dir, default_log_dir

    model, renderer = models.resolve_model_and_renderer(config.engine, config.model, config.renderer)
    lr = config.learning_rate
    if lr is None:
        lr = models.default_learning_rate(model, config.engine, config.lora_rank)
    log_dir = config.log_dir
    if log_dir is None:
        data = config.dataset.describe() if not isinstance(config.dataset, ConversationsBuilder) or config.dataset.path else "sample"
        log_dir = str(default_log_dir("sl", data, models.model_label(model, config.engine)))
    check_log_dir(log_dir)
    return chz.replace(config, model=model, renderer=renderer, learning_rate=lr, log_dir=log_dir)


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


def prepare_data(cfg: SLConfig) -> tuple[Renderer, ConversationDataset, ConversationDataset | None, int]:
    """Everything checked before a model loads or a file is written: the
    renderer, both splits (loadable, expressible by the renderer, something to
    train) and the number of steps."""
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer

    assert cfg.model is not None and cfg.renderer is not None
    renderer = get_renderer(cfg.renderer, tokenizer_for_model(cfg.model, cfg.engine))
    train_ds, test_ds = cfg.dataset.build(renderer, cfg.batch_size, cfg.max_length, cfg.train_on_what, cfg.seed)
    for ds in (train_ds, test_ds):
        if ds is not None:
            check_renderer_can_express(renderer, ds)
    total_steps = len(train_ds) * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    if cfg.warmup_steps >= total_steps and cfg.warmup_steps > 0:
        raise CookbookError(f"warmup_steps={cfg.warmup_steps} is not less than the run's {total_steps} steps; lower warmup_steps")
    return renderer, train_ds, test_ds, total_steps


def prepare_evaluators(specs: Sequence[str], renderer: Renderer) -> list[tuple[str, Any]]:
    """The recipe's evaluators, with their examples built once now: bad names,
    options or data fail before a model loads."""
    from cookbook_cli.evaluation.base import EvalContext, make_evaluators

    evaluators = make_evaluators(list(specs))
    for _, evaluator in evaluators:
        evaluator.examples(EvalContext(renderer, None))  # type: ignore[arg-type]
    return evaluators


def run_evaluators(evaluators: list[tuple[str, Any]], renderer: Renderer, client: Any, seed: int) -> dict[str, float]:
    """`test/<name>/<metric>` of every evaluator on a sampling client of the current weights."""
    import asyncio

    from cookbook_cli.evaluation.runner import evaluate_with_client

    if not evaluators or client is None:
        return {}
    return asyncio.run(evaluate_with_client(evaluators, renderer, client, seed))


def check_renderer_can_express(renderer: Renderer, ds: ConversationDataset) -> None:
    """Tools or thinking in the data that the chat format cannot write fail now,
    not at the step whose batch holds them."""
    for row, conv in enumerate(ds.conversations):
        try:
            renderer.check_messages(conv.messages, conv.tools or None)
        except CookbookError as e:
            raise CookbookError(f"{ds.name} row {row}: {e}") from None


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
    evaluators = prepare_evaluators(cfg.evaluators, renderer)
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
            evaluation.update(run_evaluators(evaluators, renderer, s.eval_client, cfg.seed))
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
                evaluation.update(run_evaluators(evaluators, renderer, client.save_weights_and_get_sampling_client(), cfg.seed))
            if evaluation:
                run.log_metrics(total_steps, {"epoch": final.epoch, "batch": final.batch, **evaluation, "final": True})
                if "test_nll" in evaluation:
                    result.final_test_nll = evaluation["test_nll"]
                    if result.first_test_nll is None:
                        result.first_test_nll = result.final_test_nll
                    bar.log(f"final test_nll={evaluation['test_nll']:.4g}")
            last = run.dir.checkpoints()[-1] if run.dir.checkpoints() else None
            if last is not None and last.get("final") and last.get("step") == total_steps:
                result.final_checkpoint = last
            else:
                result.final_checkpoint = checkpointer.save(final, final=True)
        result.elapsed = time.monotonic() - t_start
        return result
