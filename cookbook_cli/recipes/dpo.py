"""Direct preference optimisation: `cookbook train dpo`, or `train(DPOConfig(...))`.

Per pair of completions (chosen c, rejected r) of one prompt, with S the sum
of the completion tokens' logprobs under the policy and S_ref under the frozen
reference, the default loss (`loss_type=sigmoid`) is

    h    = (S_c - S_c_ref) - (S_r - S_r_ref)
    loss = mean over pairs of -log sigmoid(beta * h)

and `loss_type` picks any registered preference loss (`cookbook_cli.preference.losses`:
ipo, hinge, robust, simpo, orpo, a plugin's); a reference-free one (simpo,
orpo) runs no reference pass at all. `train kto` (`recipes/kto.py`) is this
loop over unpaired rows.

The loop, against the engine protocol only:

- before step 0 (when the loss needs a reference) the reference's sums of every pair (train and test) are
  computed once and kept with the run (`cookbook_cli.preference.reference`);
  a resumed run reads them back;
- step s trains on batch s % B of epoch s // B: one forward_backward_custom
  with the loss (one forward and one backward) and one optim_step;
- every `eval_every` steps (before that step's update) and at the end, the same
  loss, accuracy and margin on the held-out pairs, under `test/`;
- checkpoints every `save_every` steps and at the end, through the run lifecycle
  (`cookbook_cli.run.lifecycle`), which also resumes a killed run exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.plugins import registry
from cookbook_cli.preference.builders import ComparisonsBuilder, PreferenceDatasetBuilder, comparisons_field
from cookbook_cli.preference.losses import PAIRED, LossChoices, PreferenceLoss
from cookbook_cli.run.checkpoints import Position
from cookbook_cli.recipes.contract import Recipe, prepare_run, run_settings
from cookbook_cli.recipes.epoch_loop import HeldOutResult, grad_norm_of
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

    dataset: PreferenceDatasetBuilder = comparisons_field("dpo")
    loss_type: str = chz.field(
        default="sigmoid", doc="preference loss (cookbook losses list)", metadata={"choices": LossChoices(PAIRED)}
    )
    beta: float | None = chz.field(default=None, doc="the loss's temperature; default: the loss's (0.1, simpo 2.0; orpo takes none)")
    label_smoothing: float | None = chz.field(default=None, doc="sigmoid (cDPO) and robust: assumed share of flipped labels, 0 to 0.5; default 0, robust 0.1")
    simpo_gamma: float | None = chz.field(default=None, doc="simpo: target reward margin (default 0.5)")
    orpo_lambda: float | None = chz.field(default=None, doc="orpo: weight of the odds-ratio term beside the NLL (default 0.1)")
    loss_config: dict[str, float] = chz.field(default_factory=dict, doc="a plugin loss's other hyperparameters, loss_config.NAME=value")
    reference: str | None = chz.field(default=None, doc="reference model or checkpoint; default: the starting weights")
    init_from: str | None = chz.field(default=None, doc="start from this checkpoint (a run directory, e.g. an SFT run, or a state path)")

    #: the registry kind of the losses this recipe takes, and the fields that are loss hyperparameters
    LOSS_KIND = PAIRED
    LOSS_FIELDS = ("beta", "label_smoothing", "simpo_gamma", "orpo_lambda")
    RECIPE_NAME = "dpo"

    @chz.validate
    def _check(self) -> None:
        loss = self.loss()
        self.hyperparameters()
        if self.reference is not None and not loss.needs_reference:
            raise CookbookError(f"loss_type {self.loss_type!r} uses no reference model; drop --reference")

    def loss(self) -> PreferenceLoss:
        from cookbook_cli.preference.losses import preference_loss

        return preference_loss(self.loss_type, self.LOSS_KIND, f"`train {self.RECIPE_NAME} --loss-type`")

    def hyperparameters(self) -> dict[str, float]:
        """The loss's hyperparameters: the fields and loss_config given, over the loss's defaults (checked)."""
        for key in self.loss_config:
            if key in self.LOSS_FIELDS:
                raise CookbookError(f"loss_config.{key}: set {key} with --{key.replace('_', '-')}")
        given = {k: getattr(self, k) for k in self.LOSS_FIELDS if getattr(self, k) is not None} | dict(self.loss_config)
        how = {k: f"--{k.replace('_', '-')}" for k in self.LOSS_FIELDS}
        return self.loss().resolve(self.loss_type, given, lambda k: how.get(k, f"loss_config.{k}"))

    def resolve_more(self, resolved: Any) -> dict[str, Any]:
        """The loss's hyperparameters recorded in config.json (its defaults filled in)."""
        values = self.hyperparameters()
        more: dict[str, Any] = super().resolve_more(resolved)
        more |= {k: values[k] for k in self.LOSS_FIELDS if k in values}
        return more | {"loss_config": {k: v for k, v in values.items() if k not in self.LOSS_FIELDS}}

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
class DPOResult(HeldOutResult):
    """A finished `train dpo` / `train kto` run: its first and last held-out
    evaluations, and how many pairs' reference logprobs it computed."""

    reference_pairs_computed: int = 0


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


class _Evaluator:
    """Held-out metrics of the loss: forward passes queued on the training
    client, each batch's metrics averaged over the rows that have them."""

    def __init__(self, test: PreferenceDataset | None, sums: Sums | None, loss: LossStep) -> None:
        from cookbook_cli.preference.reference import pair_key

        self.batches = [b for b in test.all_batches() if len(b)] if test is not None else []
        self.refs = [[sums[pair_key("test", r)] for r in b.rows] if sums is not None else None for b in self.batches]
        self.loss = loss

    def submit(self, client: TrainingClient) -> list[Any] | None:
        return [client.forward(b.datums, "cross_entropy") for b in self.batches] if self.batches else None

    def finish(self, pending: list[Any] | None) -> dict[str, float]:
        import torch

        if not pending:
            return {}
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        for batch, ref, fut in zip(self.batches, self.refs, pending, strict=True):
            logprobs = [torch.as_tensor(o["logprobs"].to_numpy()) for o in fut.result().loss_fn_outputs]
            _, metrics = self.loss.fn(batch, ref)(batch.datums, logprobs)
            for key, value in metrics.items():
                if key not in ("num_pairs", "desirable"):
                    totals[key] = totals.get(key, 0.0) + value * len(batch)
                    counts[key] = counts.get(key, 0) + len(batch)
        pairs = sum(len(b) for b in self.batches)
        return {f"test/{k}": v / counts[k] for k, v in totals.items()} | {"test/num_pairs": pairs}


@dataclass(frozen=True)
class LossStep:
    """The run's loss with its hyperparameters, as a custom loss per batch."""

    name: str
    loss: PreferenceLoss
    hyperparameters: dict[str, float]

    def fn(self, batch: PreferenceBatch, reference_sums: list[Any] | None) -> Callable[..., Any]:
        return self.loss.custom_loss(self.name, self.hyperparameters, reference_sums, batch.desirable)


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
    return train_preference(config, options)


def train_preference(config: DPOConfig, options: RunOptions | None = None) -> DPOResult:
    """The loop of `train dpo` and `train kto` (the config says which: its
    recipe name, dataset and loss)."""
    from cookbook_cli.preference.reference import pair_key, resolve_checkpoint
    from cookbook_cli.recipes.epoch_loop import EpochSteps, run_epoch_loop

    recipe = config.RECIPE_NAME
    cfg, options = prepare_run(recipe, config, options)
    assert cfg.log_dir is not None and cfg.model is not None and cfg.learning_rate is not None and cfg.lora_rank is not None
    loss = LossStep(cfg.loss_type, cfg.loss(), cfg.hyperparameters())
    renderer, train_ds, test_ds, total_steps, reference = prepare_data(cfg, options.say)
    stored = {**cfg.to_json(), **({"reference_identity": reference.identity()} if loss.loss.needs_reference else {})}
    state: dict[str, Any] = {"sums": None}

    def start(run: Any, client: TrainingClient, position: Position) -> None:
        if run.resume_from is None and cfg.init_from is not None:  # the weights to start from (a resume has its own)
            client.load_state(resolve_checkpoint(cfg.init_from)).result()
        if loss.loss.needs_reference:
            state["sums"], state["computed"] = _reference_sums(run, cfg, client, reference, train_ds, test_ds, position.step, total_steps)
        state["evaluator"] = _Evaluator(test_ds, state["sums"], loss)

    def step(client: TrainingClient, batch: PreferenceBatch, lr: float) -> Callable[[], dict[str, Any]]:
        if not len(batch):
            return lambda: {"no_update": True}
        ref = [state["sums"][pair_key("train", r)] for r in batch.rows] if state["sums"] is not None else None
        fb = client.forward_backward_custom(batch.datums, loss.fn(batch, ref))
        opt = client.optim_step(cfg.adam.params(lr))
        return lambda: {**fb.result().metrics, **grad_norm_of(opt.result())}

    def evaluate(client: TrainingClient) -> Callable[[], dict[str, Any]]:
        pending = state["evaluator"].submit(client)
        return lambda: state["evaluator"].finish(pending)

    key = loss.loss.metric
    steps = EpochSteps(
        step, evaluate, start,
        lambda row: {"loss": row.get(key), "acc": row.get("accuracy"), **({"test_acc": row["test/accuracy"]} if "test/accuracy" in row else {})},
        "no row of its batch kept a completion token within max_length (raise --max-length)",
    )
    done = run_epoch_loop(run_settings(recipe, cfg, options, stored), cfg, train_ds, total_steps, steps, renderer)
    return DPOResult.of(done, reference_pairs_computed=state.get("computed", 0))


def summary(config: DPOConfig, result: DPOResult) -> list[str]:
    """What `cookbook train dpo` prints after the run."""
    from cookbook_cli.recipes.report import done_line

    lines = [done_line(result.total_steps - result.start_step, result.elapsed, result.start_step)]
    first, final = result.first_eval, result.final_eval
    if "test/accuracy" in final:
        lines.append(f"  test accuracy {first.get('test/accuracy', float('nan')):.3f} -> {final['test/accuracy']:.3f}")
        for key, label in (("test/margin", "margin"), ("test/kl", "KL")):
            if key in final:
                lines.append(f"  test {label:<9}{first.get(key, float('nan')):.4g} -> {final[key]:.4g}")
    return lines


RECIPE = Recipe(DPOConfig, train, summary)
