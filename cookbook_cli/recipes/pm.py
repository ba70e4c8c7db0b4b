"""A preference model: `cookbook train pm`, or `train(PMConfig(...))`.

A generative judge, trained with SFT: each comparison of a preference dataset
becomes the judging conversation of `cookbook_cli.preference.judging` (the
prompt and both replies in one user turn, answered "A" or "B"), once in each
order of its replies, so the judge sees every pair both ways and cannot learn
a favourite position. The loss is the cross-entropy of the answer (its label
token and end of turn).

Every `eval_every` steps and at the end, the held-out comparisons are judged
by the current weights through `PreferenceJudge` (a sampling client's
`compute_logprobs` of both labels, in both orders): `test/accuracy` (the
both-orders preference picks the labelled reply), `test/accuracy_one_order`,
and the position bias, `test/first_rate_minus_half` and `test/order_gap`
(see `preference.judge.judge_comparisons`).

The epoch loop and the run lifecycle do the rest (checkpoints, exact resume);
a finished run is a judge for `env=preference env.judge=RUN`, the `win_rate`
evaluator and `PreferenceJudge` (`open_judge(RUN)`), and works with `sample`,
`eval` and `export` like any run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.plugins import registry
from cookbook_cli.preference.builders import ComparisonsBuilder, PreferenceDatasetBuilder, comparisons_field
from cookbook_cli.recipes.contract import Recipe, prepare_run, run_settings
from cookbook_cli.recipes.epoch_loop import HeldOutResult
from cookbook_cli.run.config import EpochConfig
from cookbook_cli.run.options import RunOptions

if TYPE_CHECKING:
    from cookbook_cli.data.supervised import ConversationDataset, SupervisedBatch
    from cookbook_cli.engines.protocol import TrainingClient
    from cookbook_cli.preference.types import LabeledComparison
    from cookbook_cli.renderers.base import Renderer


@chz.chz
class PMConfig(EpochConfig):
    """A preference model (a judge of two replies) trained with SFT on comparisons (the run's fields: `EpochConfig`)."""

    dataset: PreferenceDatasetBuilder = comparisons_field("pm")

    def registries(self) -> dict[str, Any]:
        return {"dataset": registry.dataset_builders}

    def data_label(self) -> str:
        return self.dataset.describe() if not isinstance(self.dataset, ComparisonsBuilder) or self.dataset.path else "sample"


class PMResult(HeldOutResult):
    """A finished `train pm` run: its first and last held-out judgements."""


def prepare_data(cfg: PMConfig, say: Callable[[str], None]) -> tuple[Renderer, ConversationDataset, list[LabeledComparison], int]:
    """The renderer, the judging conversations to train on, the held-out
    comparisons and the number of steps: all checked before a model loads."""
    from cookbook_cli.data.supervised import ConversationDataset
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.preference.judging import judging_conversations
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.types import LossReduction, TrainOnWhat

    assert cfg.model is not None and cfg.renderer is not None
    renderer = get_renderer(cfg.renderer, tokenizer_for_model(cfg.model, cfg.engine))
    name = cfg.dataset.describe()
    train_set, test_set = (s.usable() for s in cfg.dataset.load(cfg.seed))
    if not train_set.comparisons:
        raise CookbookError(f"dataset {name} has no usable training comparisons" + (f" (skipped: {train_set.describe_skipped()})" if train_set.skipped else ""))
    conversations = [conv for lc in train_set.comparisons for conv in judging_conversations(lc)]
    train_ds = ConversationDataset(
        conversations, renderer, cfg.batch_size, cfg.max_length, TrainOnWhat.LAST_ASSISTANT_MESSAGE, cfg.seed, f"{name} (judging)",
        LossReduction.MEAN,
    )
    train_ds.validate()
    if len(train_ds) == 0:
        raise CookbookError(
            f"dataset {name} gives {len(conversations)} judging conversations ({len(train_set.comparisons)} comparisons in both orders), "
            f"fewer than one batch of {cfg.batch_size}; lower --batch-size"
        )
    return renderer, train_ds, test_set.comparisons, cfg.epoch_steps(len(train_ds), say)


def train(config: PMConfig, options: RunOptions | None = None) -> PMResult:
    """Train a preference model; returns what happened (`RunOptions`: how to run it)."""
    import asyncio

    from cookbook_cli.preference.judge import PreferenceJudge, judge_comparisons
    from cookbook_cli.recipes.epoch_loop import EpochSteps, grad_norm_of, run_epoch_loop
    from cookbook_cli.recipes.sl import weighted_nll

    cfg, options = prepare_run("pm", config, options)
    renderer, train_ds, held_out, total_steps = prepare_data(cfg, options.say)

    def step(client: TrainingClient, batch: SupervisedBatch, lr: float) -> Callable[[], dict[str, Any]]:
        if not batch.datums:
            return lambda: {"no_update": True}
        fb = client.forward_backward(batch.datums, "cross_entropy")
        opt = client.optim_step(cfg.adam.params(lr))

        def done() -> dict[str, Any]:
            nll_sum, weight = weighted_nll(fb.result(), batch.datums)
            return {**({"loss": nll_sum / weight} if weight > 0 else {"no_update": True}), **grad_norm_of(opt.result())}

        return done

    def evaluate(client: TrainingClient) -> Callable[[], dict[str, Any]]:
        if not held_out:
            return dict
        judge = PreferenceJudge(client.save_weights_and_get_sampling_client(), renderer)
        return lambda: {f"test/{k}": v for k, v in asyncio.run(judge_comparisons(judge, held_out)).items()}

    def bar_fields(row: dict[str, Any]) -> dict[str, Any]:
        return {"loss": row.get("loss"), **({"test_acc": row["test/accuracy"]} if "test/accuracy" in row else {})}

    steps = EpochSteps(
        step, evaluate, bar_fields=bar_fields,
        nothing_trained="no judging conversation kept its answer within max_length (raise --max-length)",
    )
    done = run_epoch_loop(run_settings("pm", cfg, options), cfg, train_ds, total_steps, steps, renderer)
    return PMResult.of(done)


def summary(config: PMConfig, result: PMResult) -> list[str]:
    """What `cookbook train pm` prints after the run."""
    from cookbook_cli.recipes.report import done_line

    lines = [done_line(result.total_steps - result.start_step, result.elapsed, result.start_step)]
    first, final = result.first_eval, result.final_eval
    if "test/accuracy" in final:
        nan = float("nan")
        lines.append(f"  test accuracy        {first.get('test/accuracy', nan):.3f} -> {final['test/accuracy']:.3f} (both orders averaged)")
        lines.append(f"  one-order accuracy   {first.get('test/accuracy_one_order', nan):.3f} -> {final['test/accuracy_one_order']:.3f}")
        lines.append(
            f"  position bias        first-reply rate - 0.5 = {final['test/first_rate_minus_half']:+.3f}, "
            f"order gap = {final['test/order_gap']:+.3f}"
        )
    return lines


RECIPE = Recipe(PMConfig, train, summary)
