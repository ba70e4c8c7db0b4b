"""Supervised fine-tuning: `cookbook train sl`, or `train(SLConfig(...))` from Python.

The epoch loop (`cookbook_cli.recipes.epoch_loop`, with `pipeline`) runs
this recipe's step, against the engine protocol only (so it runs on every
engine):

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

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import SUPERVISED_FILES, RegistryFactory
from cookbook_cli.conversations import located
from cookbook_cli.data.builders import ConversationsBuilder, SupervisedDatasetBuilder
from cookbook_cli.errors import CookbookError
from cookbook_cli.plugins import registry
from cookbook_cli.recipes.contract import Recipe, prepare_run, run_settings
from cookbook_cli.run.config import EpochConfig
from cookbook_cli.run.options import RunOptions
from cookbook_cli.types import LossReduction, TrainOnWhat

if TYPE_CHECKING:
    from cookbook_cli.data.builders import SupervisedData
    from cookbook_cli.data.supervised import ConversationDataset, SupervisedBatch
    from cookbook_cli.engines.protocol import APIFuture, TrainingClient
    from cookbook_cli.renderers.base import Renderer


@chz.chz
class SLConfig(EpochConfig):
    """Supervised fine-tuning on conversations (the run's fields: `EpochConfig`)."""

    dataset: SupervisedDatasetBuilder = chz.field(
        default_factory=ConversationsBuilder,
        meta_factory=RegistryFactory(
            registry.dataset_builders, ConversationsBuilder, kinds=("supervised",), used_by="`train sl`", files=SUPERVISED_FILES
        ),
        doc="dataset builder name (cookbook datasets list) or a conversations .jsonl file; its fields are dataset.<field>",
    )
    train_on_what: str = chz.field(
        default="all_assistant_messages", doc="which tokens are trained", metadata={"choices": tuple(m.value for m in TrainOnWhat)}
    )
    loss_reduction: str = chz.field(
        default="mean",
        doc="mean: each example's token losses averaged, so every example weighs the same (tinker-cookbook's default); sum: token losses summed",
        metadata={"choices": tuple(m.value for m in LossReduction)},
    )
    pipeline: bool = chz.field(default=True, doc="overlap engine work with data preparation (false: strictly sequential)")

    RESUME_MAY_CHANGE = (*EpochConfig.RESUME_MAY_CHANGE, "pipeline")

    @chz.validate
    def _check(self) -> None:
        TrainOnWhat.parse(self.train_on_what)
        LossReduction.parse(self.loss_reduction)

    def registries(self) -> dict[str, Any]:
        return {"dataset": registry.dataset_builders}

    def data_label(self) -> str:
        return self.dataset.describe() if not isinstance(self.dataset, ConversationsBuilder) or self.dataset.path else "sample"


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


def weighted_nll(outputs: Any, datums: list[Any]) -> tuple[float, float]:
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
            t, w = weighted_nll(fut.result(), datums)
            total += t
            weight += w
        return {"test_nll": total / weight} if weight > 0 else {}


# -- the loop ----------------------------------------------------------------------------------


def prepare_data(cfg: SLConfig, say: Callable[[str], None]) -> tuple[Renderer, SupervisedData, ConversationDataset | None, int]:
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
    return renderer, train_ds, test_ds, cfg.epoch_steps(len(train_ds), say)


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


def train(config: SLConfig, options: RunOptions | None = None) -> SLResult:
    """Run supervised fine-tuning; returns what happened (`RunOptions`: how to run it)."""
    from cookbook_cli.recipes.epoch_loop import EpochSteps, grad_norm_of, run_epoch_loop

    cfg, options = prepare_run("sl", config, options)
    renderer, train_ds, test_ds, total_steps = prepare_data(cfg, options.say)
    evaluator = _Evaluator(test_ds)

    def step(client: TrainingClient, batch: SupervisedBatch, lr: float) -> Callable[[], dict[str, Any]]:
        # A batch whose every example was skipped (nothing trained within
        # max_length) becomes a step without an update, logged as such.
        if not batch.datums:
            return lambda: {"no_update": True}
        fb = client.forward_backward(batch.datums, "cross_entropy")
        if not cfg.pipeline:  # strictly sequential: wait for every call before the next
            fb.result()
        opt = client.optim_step(cfg.adam.params(lr))
        if not cfg.pipeline:
            opt.result()

        def done() -> dict[str, Any]:
            nll_sum, weight = weighted_nll(fb.result(), batch.datums)
            return {**({"loss": nll_sum / weight} if weight > 0 else {"no_update": True}), **grad_norm_of(opt.result())}

        return done

    def evaluate(client: TrainingClient) -> Callable[[], dict[str, Any]]:
        pending = evaluator.submit(client, wait_each=not cfg.pipeline)
        return lambda: _Evaluator.finish(pending)

    def bar_fields(row: dict[str, Any]) -> dict[str, Any]:
        tokens = {"tok/s": round(row["tokens_per_s"]) if row.get("tokens_per_s") else None}
        return {"loss": row.get("loss"), **tokens, **({"test_nll": row["test_nll"]} if "test_nll" in row else {})}

    steps = EpochSteps(
        step, evaluate, bar_fields=bar_fields, pipeline=cfg.pipeline,
        nothing_trained="every example was skipped: no trained token within max_length (see `skipped` in metrics.jsonl); "
        "raise --max-length or check which messages train_on_what selects",
    )
    done = run_epoch_loop(run_settings("sl", cfg, options), cfg, train_ds, total_steps, steps, renderer)
    rows = [r for r in (*done.earlier, *done.metrics) if not r.get("final")]
    losses = [r["loss"] for r in rows if "loss" in r]
    evals = [r["test_nll"] for r in rows if "test_nll" in r]
    final_nll = done.final_eval.get("test_nll")
    this_run = [r["loss"] for r in done.metrics if "loss" in r]
    return SLResult(
        done.log_dir, done.total_steps, done.start_step, losses[0] if losses else None, this_run[-1] if this_run else None,
        evals[0] if evals else final_nll, final_nll, done.elapsed, done.final_checkpoint, done.start_step if done.resumed else None,
        sum(int(r.get("truncated", 0)) for r in done.metrics), done.metrics,
    )


def summary(config: SLConfig, result: SLResult) -> list[str]:
    """What `cookbook train sl` prints after the run."""
    from cookbook_cli.recipes.report import change, done_line

    lines = [done_line(result.total_steps - result.start_step, result.elapsed, result.resumed_from), f"  train loss  {change(result.first_loss, result.last_loss)}"]
    if result.final_test_nll is not None:
        lines.append(f"  test NLL    {change(result.first_test_nll, result.final_test_nll)}")
    if result.truncated:
        lines.append(f"  {result.truncated} examples were truncated to max_length")
    return lines


RECIPE = Recipe(SLConfig, train, summary)
