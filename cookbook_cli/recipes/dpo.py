"""Direct preference optimisation: `cookbook train dpo`, or `train(DPOConfig(...))`.

Per pair of completions (chosen c, rejected r) of one prompt, with S the sum
of the completion tokens' logprobs under the policy and S_ref under the frozen
reference:

    h    = (S_c - S_c_ref) - (S_r - S_r_ref)
    loss = mean over pairs of -log sigmoid(beta * h)

The loop, against the engine protocol only:

- before step 0 the reference's sums of every pair (train and test) are
  computed once and kept with the run (`cookbook_cli.preference.reference`);
  a resumed run reads them back;
- step s trains on batch s % B of epoch s // B: one forward_backward_custom
  with the DPO loss (one forward and one backward) and one optim_step;
- every `eval_every` steps (before that step's update) and at the end, the same
  loss, accuracy and margin on the held-out pairs, under `test/`;
- checkpoints every `save_every` steps and at the end, through the run lifecycle
  (`cookbook_cli.run.lifecycle`), which also resumes a killed run exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import RegistryFactory
from cookbook_cli.errors import CookbookError
from cookbook_cli.plugins import registry
from cookbook_cli.preference.builders import ComparisonsBuilder, PreferenceDatasetBuilder
from cookbook_cli.preference.loss import DEFAULT_BETA
from cookbook_cli.run.checkpoints import Position
from cookbook_cli.recipes.contract import Recipe, prepare_run, run_settings
from cookbook_cli.recipes.epoch_loop import grad_norm_of
from cookbook_cli.run.config import EpochConfig
from cookbook_cli.run.options import RunOptions

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import TrainingClient
    from cookbook_cli.preference.data import PreferenceBatch, PreferenceDataset
    from cookbook_cli.preference.reference import Reference, Sums

#: The learning rate for a pretrained model (tinker-cookbook's DPO default);
#: models trained from scratch get the engine's from-scratch rate.
PRETRAINED_LR = 1e-5


@chz.chz
class DPOConfig(EpochConfig):
    """Preference learning (DPO) on comparisons (the run's fields: `EpochConfig`)."""

    dataset: PreferenceDatasetBuilder = chz.field(
        default_factory=ComparisonsBuilder,
        meta_factory=RegistryFactory(
            registry.dataset_builders, ComparisonsBuilder, kinds=("preference",), used_by="`train dpo`", files={".jsonl": "comparisons"}
        ),
        doc="preference dataset builder name (cookbook datasets list) or a comparisons .jsonl file; its fields are dataset.<field>",
    )
    beta: float = chz.field(default=DEFAULT_BETA, doc="DPO temperature: how far the policy may move from the reference")
    reference: str | None = chz.field(default=None, doc="reference model or checkpoint; default: the starting weights")
    init_from: str | None = chz.field(default=None, doc="start from this checkpoint (a run directory, e.g. an SFT run, or a state path)")

    @chz.validate
    def _check(self) -> None:
        if not self.beta > 0:
            raise CookbookError(f"beta must be > 0, got {self.beta}")

    def registries(self) -> dict[str, Any]:
        return {"dataset": registry.dataset_builders}

    def data_label(self) -> str:
        return self.dataset.describe() if not isinstance(self.dataset, ComparisonsBuilder) or self.dataset.path else "sample"

    def default_learning_rate(self, model: str, engine: str, rank: int) -> float:
        """1e-5 for a pretrained model, the engine's from-scratch rate for a random one."""
        from cookbook_cli import models

        spec = models.model_spec(model, engine)
        return super().default_learning_rate(model, engine, rank) if spec is not None and spec.from_scratch else PRETRAINED_LR


@dataclass
class DPOResult:
    log_dir: Path
    total_steps: int
    start_step: int
    first_eval: dict[str, float] = field(default_factory=dict)
    final_eval: dict[str, float] = field(default_factory=dict)
    reference_pairs_computed: int = 0
    final_checkpoint: dict[str, Any] | None = None
    elapsed: float = 0.0
    metrics: list[dict[str, Any]] = field(default_factory=list)


def prepare_data(cfg: DPOConfig, say: Callable[[str], None]) -> tuple[Any, PreferenceDataset, PreferenceDataset | None, int, Reference]:
    """Everything checked before a model loads or a file is written."""
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.preference.reference import reference_of
    from cookbook_cli.renderers import get_renderer

    assert cfg.model is not None and cfg.renderer is not None
    reference = reference_of(cfg.model, cfg.init_from, cfg.reference)
    renderer = get_renderer(cfg.renderer, tokenizer_for_model(cfg.model, cfg.engine))
    train_ds, test_ds = cfg.dataset.build(renderer, cfg.batch_size, cfg.max_length, cfg.seed)
    return renderer, train_ds, test_ds, cfg.epoch_steps(len(train_ds), say), reference


def _policy_sums_metrics(batch: PreferenceBatch, outputs: Any, ref: list[tuple[float, float]], beta: float) -> dict[str, float]:
    """The DPO loss's metrics of a forward pass (no update)."""
    import torch

    from cookbook_cli.preference.loss import dpo_loss_fn

    logprobs = [torch.as_tensor(o["logprobs"].to_numpy()) for o in outputs.loss_fn_outputs]
    _, metrics = dpo_loss_fn(ref, beta)(batch.datums, logprobs)
    return metrics


class _Evaluator:
    """Held-out loss, accuracy and margin: forward passes queued on the training client."""

    def __init__(self, test: PreferenceDataset | None, sums: Sums, beta: float) -> None:
        from cookbook_cli.preference.reference import pair_key

        self.batches = [b for b in test.all_batches() if len(b)] if test is not None else []
        self.refs = [[sums[pair_key("test", r)] for r in b.rows] for b in self.batches]  # type: ignore[misc]
        self.beta = beta

    def submit(self, client: TrainingClient) -> list[Any] | None:
        return [client.forward(b.datums, "cross_entropy") for b in self.batches] if self.batches else None

    def finish(self, pending: list[Any] | None) -> dict[str, float]:
        if not pending:
            return {}
        totals: dict[str, float] = {}
        pairs = 0
        for batch, ref, fut in zip(self.batches, self.refs, pending, strict=True):
            m = _policy_sums_metrics(batch, fut.result(), ref, self.beta)
            for key in ("dpo_loss", "accuracy", "chosen_reward", "rejected_reward", "margin"):
                totals[key] = totals.get(key, 0.0) + m[key] * len(batch)
            pairs += len(batch)
        return {f"test/{k}": v / pairs for k, v in totals.items()} | {"test/num_pairs": pairs}


def _reference_sums(run: Any, cfg: DPOConfig, client: TrainingClient, reference: Reference, train_ds: PreferenceDataset,
                    test_ds: PreferenceDataset | None, start: int, total: int) -> tuple[Sums, int]:
    """The reference's sums of every pair the run needs: read from the run, and
    the missing ones computed once, by the policy itself while it still is the
    starting weights (exactly), else by a client of the recorded reference."""
    from cookbook_cli.preference.reference import (
        FOLDER,
        compute_sums,
        fingerprint,
        load_sums,
        open_reference_client,
        all_batches_rows,
        batches_for_steps,
        pair_key,
        save_sums,
    )

    folder = run.subdir(FOLDER)
    digest = fingerprint({"train": train_ds, "test": test_ds})
    sums = load_sums(folder, reference, digest, run.say) or {}
    wanted = {"train": (train_ds, batches_for_steps(train_ds, start, total))}
    if test_ds is not None:
        wanted["test"] = (test_ds, all_batches_rows(test_ds))
    # batches holding a pair the file lacks are scored whole (see batches_for_steps)
    missing = {s: (ds, [g for g in groups if any(pair_key(s, r) not in sums for r in g)]) for s, (ds, groups) in wanted.items()}
    count = len({pair_key(s, r) for s, (_, groups) in missing.items() for g in groups for r in g if pair_key(s, r) not in sums})
    if count == 0:
        run.say(f"Reference logprobs: read from {folder / 'sums.json'}")
        return sums, 0
    untouched = start == 0 and run.resume_from is None and reference.kind == "start"
    scorer = client if untouched else open_reference_client(run.service, reference, cfg.lora_rank, cfg.seed)
    t0 = time.monotonic()
    computed = compute_sums(scorer, missing)
    sums.update({k: v for k, v in computed.items() if k not in sums})
    save_sums(folder, reference, digest, sums)
    run.say(f"Reference logprobs: {count} pairs under {reference.describe()} in {time.monotonic() - t0:.1f}s")
    return sums, count


def train(config: DPOConfig, options: RunOptions | None = None) -> DPOResult:
    """Run DPO; returns what happened (`RunOptions`: how to run it)."""
    from cookbook_cli.preference.loss import dpo_loss_fn
    from cookbook_cli.preference.reference import pair_key, resolve_checkpoint
    from cookbook_cli.recipes.epoch_loop import EpochSteps, run_epoch_loop

    cfg, options = prepare_run("dpo", config, options)
    assert cfg.log_dir is not None and cfg.model is not None and cfg.learning_rate is not None and cfg.lora_rank is not None
    renderer, train_ds, test_ds, total_steps, reference = prepare_data(cfg, options.say)
    stored = {**cfg.to_json(), "reference_identity": reference.identity()}
    state: dict[str, Any] = {}

    def start(run: Any, client: TrainingClient, position: Position) -> None:
        if run.resume_from is None and cfg.init_from is not None:  # the weights to start from (a resume has its own)
            client.load_state(resolve_checkpoint(cfg.init_from)).result()
        sums, state["computed"] = _reference_sums(run, cfg, client, reference, train_ds, test_ds, position.step, total_steps)
        state["sums"] = sums
        state["evaluator"] = _Evaluator(test_ds, sums, cfg.beta)

    def step(client: TrainingClient, batch: PreferenceBatch, lr: float) -> Callable[[], dict[str, Any]]:
        if not len(batch):
            return lambda: {"no_update": True}
        ref = [state["sums"][pair_key("train", r)] for r in batch.rows]
        fb = client.forward_backward_custom(batch.datums, dpo_loss_fn(ref, cfg.beta))
        opt = client.optim_step(cfg.adam.params(lr))
        return lambda: {**fb.result().metrics, **grad_norm_of(opt.result())}

    def evaluate(client: TrainingClient) -> Callable[[], dict[str, Any]]:
        pending = state["evaluator"].submit(client)
        return lambda: state["evaluator"].finish(pending)

    steps = EpochSteps(
        step, evaluate, start,
        lambda row: {"loss": row.get("dpo_loss"), "acc": row.get("accuracy"), **({"test_acc": row["test/accuracy"]} if "test/accuracy" in row else {})},
        "no pair of its batch kept a completion token within max_length (raise --max-length)",
    )
    done = run_epoch_loop(run_settings("dpo", cfg, options, stored), cfg, train_ds, total_steps, steps, renderer)
    evals = [r for r in (*done.earlier, *done.metrics) if "test/accuracy" in r]
    first = {k: v for k, v in evals[0].items() if k.startswith("test/")} if evals else {}
    final = {k: v for k, v in done.final_eval.items()}
    return DPOResult(
        done.log_dir, done.total_steps, done.start_step, first or final, final, state.get("computed", 0), done.final_checkpoint,
        done.elapsed, done.metrics,
    )


def summary(config: DPOConfig, result: DPOResult) -> list[str]:
    """What `cookbook train dpo` prints after the run."""
    from cookbook_cli.recipes.report import done_line

    lines = [done_line(result.total_steps - result.start_step, result.elapsed, result.start_step)]
    first, final = result.first_eval, result.final_eval
    if "test/accuracy" in final:
        lines.append(f"  test accuracy {first.get('test/accuracy', float('nan')):.3f} -> {final['test/accuracy']:.3f}")
        lines.append(f"  test margin   {first.get('test/margin', float('nan')):.4g} -> {final['test/margin']:.4g}")
    return lines


RECIPE = Recipe(DPOConfig, train, summary)
