"""The unpaired preference dataset builders (kind `preference-unpaired`, for `train kto`):

- `unpaired`: a JSONL file of unpaired rows (`cookbook_cli.preference.unpaired`;
  the sample shipped with the package when no path is given, made from the
  paired sample by `scripts/make_unpaired_sample.py`), seeded test split;
- `unpaired_pairs`: a comparison file (default: the paired sample) read as
  unpaired rows, each pair's chosen completion desirable and its rejected one
  undesirable; the split is by comparison, so a prompt's two rows stay together.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import ClassVar

import chz

from cookbook_cli.data.supervised import split_train_test
from cookbook_cli.preference.builders import ComparisonsBuilder, PreferenceDatasetBuilder, count_or_fraction
from cookbook_cli.preference.data import ComparisonSet
from cookbook_cli.preference.unpaired import UnpairedDataset, load_unpaired, rows_from_comparisons

SAMPLE_FILE = "sample_unpaired.jsonl"


def sample_unpaired_path() -> Path:
    """The sample of unpaired rows shipped inside the package."""
    return Path(str(resources.files("cookbook_cli.data").joinpath(SAMPLE_FILE)))


@chz.chz
class UnpairedBuilder(PreferenceDatasetBuilder):
    """A JSONL file of unpaired rows, split into train and test with a seed."""

    path: str | None = chz.field(default=None, doc="JSONL file of {prompt, completion, label} rows; default: the sample shipped with cookbook")
    test_size: float = chz.field(default=0.1, doc="held-out rows: a fraction below 1, or a count")

    dataset_class: ClassVar[type[UnpairedDataset]] = UnpairedDataset
    rows_word: ClassVar[str] = "rows"

    def resolved_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else sample_unpaired_path()

    def describe(self) -> str:
        return str(self.resolved_path()) if self.path else f"sample ({SAMPLE_FILE})"

    def load(self, seed: int) -> tuple[ComparisonSet, ComparisonSet]:
        train, test = split_train_test(load_unpaired(self.resolved_path()), count_or_fraction(self.test_size), seed)
        return ComparisonSet(train), ComparisonSet(test)  # type: ignore[arg-type]


@chz.chz
class UnpairedFromPairsBuilder(ComparisonsBuilder):
    """A comparison file read as unpaired rows (chosen: desirable, rejected: undesirable)."""

    dataset_class: ClassVar[type[UnpairedDataset]] = UnpairedDataset
    rows_word: ClassVar[str] = "rows"

    def load(self, seed: int) -> tuple[ComparisonSet, ComparisonSet]:
        out = []
        for split in super().load(seed):
            usable = split.usable()  # ties and the like are counted, then each pair becomes two rows
            out.append(ComparisonSet(rows_from_comparisons(usable.comparisons), usable.skipped))  # type: ignore[arg-type]
        return out[0], out[1]
