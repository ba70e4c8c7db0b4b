"""Kahneman-Tversky optimisation: `cookbook train kto`, or `train(KTOConfig(...))`.

KTO learns from unpaired rows, each a prompt and one completion labelled
desirable or undesirable (`cookbook_cli.preference.unpaired`), instead of
pairs. With r = S - S_ref the completion's log-ratio to the frozen reference
and z the batch's reference point (the mean log-ratio of its mismatched
prompt/completion pairs, clamped at 0, no gradient):

    loss = mean over rows of  desirable_weight   * (1 - sigmoid(beta (r - z)))  (desirable)
                              undesirable_weight * (1 - sigmoid(beta (z - r)))  (undesirable)

It is the DPO loop (`recipes/dpo.py`: reference sums cached with the run,
held-out metrics, checkpoints and resume) over rows of (completion,
mismatched completion) instead of (chosen, rejected), with the loss chosen
from the registered `preference-unpaired` losses (`kto`, or a plugin's).
"""

from __future__ import annotations

import chz

from cookbook_cli.config import RegistryFactory
from cookbook_cli.plugins import registry
from cookbook_cli.preference.builders import PreferenceDatasetBuilder
from cookbook_cli.preference.losses import UNPAIRED, LossChoices
from cookbook_cli.preference.unpaired_builders import UnpairedBuilder
from cookbook_cli.recipes.contract import Recipe
from cookbook_cli.recipes.dpo import DPOConfig, DPOResult, summary, train_preference
from cookbook_cli.run.options import RunOptions


@chz.chz
class KTOConfig(DPOConfig):
    """KTO on unpaired desirable/undesirable rows (the run's fields: `EpochConfig`; the loss's: `DPOConfig`)."""

    dataset: PreferenceDatasetBuilder = chz.field(
        default_factory=UnpairedBuilder,
        meta_factory=RegistryFactory(
            registry.dataset_builders, UnpairedBuilder, kinds=(UNPAIRED,), used_by="`train kto`", files={".jsonl": "unpaired"}
        ),
        doc="unpaired preference dataset builder (cookbook datasets list) or a .jsonl file of {prompt, completion, label} rows; its fields are dataset.<field>",
    )
    loss_type: str = chz.field(default="kto", doc="unpaired preference loss (cookbook losses list)", metadata={"choices": LossChoices(UNPAIRED)})
    desirable_weight: float | None = chz.field(default=None, doc="kto: weight of the desirable rows' loss, lambda_D (default 1)")
    undesirable_weight: float | None = chz.field(default=None, doc="kto: weight of the undesirable rows' loss, lambda_U (default 1)")

    LOSS_KIND = UNPAIRED
    LOSS_FIELDS = (*DPOConfig.LOSS_FIELDS, "desirable_weight", "undesirable_weight")
    RECIPE_NAME = "kto"

    def data_label(self) -> str:
        return self.dataset.describe() if not isinstance(self.dataset, UnpairedBuilder) or self.dataset.path else "sample"


def train(config: KTOConfig, options: RunOptions | None = None) -> DPOResult:
    """Run KTO; returns what happened (`RunOptions`: how to run it)."""
    return train_preference(config, options)


RECIPE = Recipe(KTOConfig, train, summary)
