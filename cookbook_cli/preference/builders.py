"""Preference dataset builders: chz configs that load comparisons and split them.

They mirror the supervised builders (`cookbook_cli.data.builders`): registered
by name with `kind="preference"`, fields reachable as `dataset.FIELD=value`,
and `build(renderer, batch_size, max_length, seed)` returns the train and test
`PreferenceDataset`s. Subclasses implement `load(seed)` returning the train and
test `ComparisonSet`s; `build` leaves out ties, empty completions and identical
completions, counts them per reason (`dataset.skipped`) and logs the counts.

Built-ins:
- `comparisons`: a JSONL comparison file (the sample shipped with the package
  when no path is given), seeded test split;
- `hh_rlhf`: Anthropic/hh-rlhf, chosen/rejected transcripts split on
  "Human:" / "Assistant:";
- `ultrafeedback`: argilla/ultrafeedback-binarized-preferences;
- `helpsteer3`: nvidia/HelpSteer3 (`preference`), ties skipped.
The Hugging Face ones load through `datasets.load_dataset`: a Hub id, or a
local folder or parquet/JSON file with the same columns (`dataset.path=...`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import chz

from cookbook_cli.conversations import parse_messages
from cookbook_cli.data.hf_loading import load_split, require_columns
from cookbook_cli.data.supervised import split_train_test
from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.data import ComparisonSet, PreferenceDataset, load_comparisons
from cookbook_cli.preference.types import Comparison, Label, LabeledComparison
from cookbook_cli.types import Message

if TYPE_CHECKING:
    from cookbook_cli.renderers.base import Renderer

logger = logging.getLogger("cookbook_cli.preference")

SAMPLE_FILE = "sample_preferences.jsonl"


def sample_preferences_path() -> Path:
    """The sample comparison file shipped inside the package."""
    return Path(str(resources.files("cookbook_cli.data").joinpath(SAMPLE_FILE)))


def count_or_fraction(test_size: float) -> int | float:
    if test_size < 0:
        raise CookbookError(f"dataset.test_size must be >= 0 (a fraction below 1, or a number of rows), got {test_size}")
    return test_size if 0 < test_size < 1 else int(round(test_size))


@chz.chz
class PreferenceDatasetBuilder:
    """Base of every preference dataset builder (`dataset_class` makes the
    datasets of its rows: comparisons, or the unpaired rows of `unpaired`)."""

    dataset_class: ClassVar[type[PreferenceDataset]] = PreferenceDataset
    rows_word: ClassVar[str] = "comparisons"

    def load(self, seed: int) -> tuple[ComparisonSet, ComparisonSet]:
        """Train and test comparisons (test may be empty), ties included."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def describe(self) -> str:
        return type(self).__name__

    def build(
        self, renderer: Renderer, batch_size: int, max_length: int | None, seed: int = 0
    ) -> tuple[PreferenceDataset, PreferenceDataset | None]:
        """Train and test datasets of usable pairs. Fails, before any model
        loads, on a row the renderer refuses (named by file and line), when no
        usable comparison is left, or when no pair keeps a completion token
        within `max_length`."""
        name = self.describe()
        train_set, test_set = (s.usable() for s in self.load(seed))
        if train_set.skipped:
            logger.warning("dataset %s: skipped %s", name, train_set.describe_skipped())
        if not train_set.comparisons:
            left_out = f" (skipped: {train_set.describe_skipped()})" if train_set.skipped else ""
            raise CookbookError(f"dataset {name} has no usable training {self.rows_word}{left_out}")
        train = self.dataset_class(train_set.comparisons, renderer, batch_size, max_length, seed, name, train_set.skipped)
        train.validate()
        if len(train) == 0:
            raise CookbookError(
                f"dataset {name} has {train.num_rows} usable training {self.rows_word}, fewer than one batch of {batch_size}; "
                "lower --batch-size"
            )
        test = None
        if test_set.comparisons:
            test = self.dataset_class(test_set.comparisons, renderer, batch_size, max_length, seed, f"{name} (test)", test_set.skipped)
            test.validate(require_trainable=False)
        return train, test


@chz.chz
class ComparisonsBuilder(PreferenceDatasetBuilder):
    """A JSONL comparison file (either shape), split into train and test with a seed."""

    path: str | None = chz.field(default=None, doc="JSONL comparison file; default: the sample shipped with cookbook")
    test_size: float = chz.field(default=0.1, doc="held-out rows: a fraction below 1, or a count")

    def resolved_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else sample_preferences_path()

    def describe(self) -> str:
        return str(self.resolved_path()) if self.path else f"sample ({SAMPLE_FILE})"

    def load(self, seed: int) -> tuple[ComparisonSet, ComparisonSet]:
        size = count_or_fraction(self.test_size)
        train, test = split_train_test(load_comparisons(self.resolved_path()), size, seed)
        return ComparisonSet(train), ComparisonSet(test)


def comparisons_field(recipe: str) -> Any:
    """The `dataset` field of a recipe that trains on comparisons (`train dpo`,
    `train pm`): a preference builder's name or a comparison .jsonl file."""
    from cookbook_cli.config import RegistryFactory
    from cookbook_cli.plugins import registry

    return chz.field(
        default_factory=ComparisonsBuilder,
        meta_factory=RegistryFactory(
            registry.dataset_builders, ComparisonsBuilder, kinds=("preference",), used_by=f"`train {recipe}`", files={".jsonl": "comparisons"}
        ),
        doc="preference dataset builder name (cookbook datasets list) or a comparisons .jsonl file; its fields are dataset.<field>",
    )


# -- Hugging Face datasets ------------------------------------------------------------------


@chz.chz
class HfPreferenceBuilder(PreferenceDatasetBuilder):
    """Common ground of the Hugging Face preference datasets: which split to
    read, how to hold out a test split, how many rows to use. Subclasses name
    their columns and turn one row into a comparison."""

    path: str = chz.field(doc="Hub dataset id (owner/name), a local folder, or a .parquet/.json/.jsonl file")
    config_name: str | None = chz.field(default=None, doc="the dataset's configuration (load_dataset's name)")
    train_split: str = chz.field(default="train", doc="split to train on")
    test_split: str | None = chz.field(default=None, doc="split to evaluate on; none: hold out test_size rows")
    test_size: float = chz.field(default=0.0, doc="held-out rows when there is no test split")
    max_rows: int | None = chz.field(default=None, doc="use only the first N rows of each split")

    #: the columns a row must have, and those read when present (else None)
    columns: ClassVar[tuple[str, ...]] = ()
    optional_columns: ClassVar[tuple[str, ...]] = ()

    def describe(self) -> str:
        return self.path + (f" ({self.config_name})" if self.config_name else "")

    def row_to_comparison(self, row: dict[str, Any], where: str) -> LabeledComparison | str:
        """The row's comparison, or why it is skipped (a short reason, counted)."""
        raise NotImplementedError

    def _rows(self, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
        ds = load_split(self.path, self.config_name, split, self.describe())
        require_columns(ds, self.columns, self.describe(), split, f"is it a copy of {type(self).__name__}'s dataset?")
        if self.max_rows is not None:
            ds = ds.select(range(min(self.max_rows, len(ds))))
        columns = {c: ds[c] for c in (*self.columns, *self.optional_columns) if c in ds.column_names}
        absent = {c: None for c in self.optional_columns if c not in columns}
        for i in range(len(ds)):
            yield f"{self.describe()}[{split}] row {i}", {**absent, **{c: v[i] for c, v in columns.items()}}

    def _read(self, split: str) -> ComparisonSet:
        out = ComparisonSet()
        for where, row in self._rows(split):
            result = self.row_to_comparison(row, where)
            if isinstance(result, str):
                out.skipped[result] += 1
            else:
                out.comparisons.append(result)
        if not out.comparisons and not out.skipped:
            raise CookbookError(f"dataset {self.describe()!r} split {split!r} holds no rows")
        return out

    def load(self, seed: int) -> tuple[ComparisonSet, ComparisonSet]:
        size = count_or_fraction(self.test_size)
        train = self._read(self.train_split)
        if self.test_split:
            return train, self._read(self.test_split)
        kept, held = split_train_test(train.comparisons, size, seed)
        return ComparisonSet(kept, train.skipped), ComparisonSet(held)


def _text(value: Any, where: str, column: str) -> str:
    if not isinstance(value, str):
        raise CookbookError(f"{where}: column {column!r} must be a string, got {type(value).__name__}")
    return value


def _reply(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


_TRANSCRIPT_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
SKIP_UNPARSED = "transcript that does not parse"
SKIP_DIVERGED = "transcripts that differ before the last reply"


def parse_transcript(text: str) -> list[Message] | None:
    """An hh-rlhf transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...") as messages,
    or None when it is not one (text before the first turn, no turns)."""
    parts = _TRANSCRIPT_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        return None
    messages: list[Message] = []
    for speaker, body in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": "user" if speaker == "Human" else "assistant", "content": body.strip()})
    return messages


@chz.chz
class HhRlhfBuilder(HfPreferenceBuilder):
    """Anthropic/hh-rlhf: pairs of whole transcripts that share all but the last
    assistant reply. Rows that do not parse, or that differ earlier, are skipped
    and counted."""

    path: str = chz.field(default="Anthropic/hh-rlhf", doc="Hub id, or a local copy with columns chosen, rejected")
    test_split: str | None = chz.field(default="test", doc="split to evaluate on")

    columns: ClassVar[tuple[str, ...]] = ("chosen", "rejected")

    def row_to_comparison(self, row: dict[str, Any], where: str) -> LabeledComparison | str:
        chosen = parse_transcript(_text(row["chosen"], where, "chosen"))
        rejected = parse_transcript(_text(row["rejected"], where, "rejected"))
        if chosen is None or rejected is None:
            return SKIP_UNPARSED
        if len(chosen) != len(rejected) or chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
            return SKIP_DIVERGED
        return LabeledComparison(Comparison(chosen[:-1], chosen[-1:], rejected[-1:]), "A", where)


@chz.chz
class UltraFeedbackBuilder(HfPreferenceBuilder):
    """argilla/ultrafeedback-binarized-preferences: an instruction, the response
    with the best mean rating and a worse one. Equal ratings are ties (skipped)."""

    path: str = chz.field(
        default="argilla/ultrafeedback-binarized-preferences",
        doc="Hub id, or a local copy with columns instruction, chosen_response, rejected_response",
    )
    test_size: float = chz.field(default=1024, doc="held-out rows (the dataset has only a train split)")

    columns: ClassVar[tuple[str, ...]] = ("instruction", "chosen_response", "rejected_response")
    optional_columns: ClassVar[tuple[str, ...]] = ("chosen_avg_rating", "rejected_avg_rating")

    def row_to_comparison(self, row: dict[str, Any], where: str) -> LabeledComparison | str:
        prompt: list[Message] = [{"role": "user", "content": _text(row["instruction"], where, "instruction")}]
        chosen = _reply(_text(row["chosen_response"], where, "chosen_response"))
        rejected = _reply(_text(row["rejected_response"], where, "rejected_response"))
        a, b = row["chosen_avg_rating"], row["rejected_avg_rating"]
        label: Label = "Tie" if a is not None and b is not None and a == b else "A"
        return LabeledComparison(Comparison(prompt, chosen, rejected), label, where)


@chz.chz
class HelpSteer3Builder(HfPreferenceBuilder):
    """nvidia/HelpSteer3, `preference` configuration: a context conversation, two
    responses and overall_preference from -3 (response 1 much better) to 3
    (response 2 much better); 0 is a tie (skipped)."""

    path: str = chz.field(default="nvidia/HelpSteer3", doc="Hub id, or a local copy with the preference columns")
    config_name: str | None = chz.field(default="preference", doc="the dataset's configuration")
    test_split: str | None = chz.field(default="validation", doc="split to evaluate on")

    columns: ClassVar[tuple[str, ...]] = ("context", "response1", "response2", "overall_preference")

    def row_to_comparison(self, row: dict[str, Any], where: str) -> LabeledComparison | str:
        prompt = parse_messages(row["context"], where, "context")
        preference = row["overall_preference"]
        if isinstance(preference, bool) or not isinstance(preference, (int, float)):
            raise CookbookError(f"{where}: column 'overall_preference' must be a number from -3 to 3, got {preference!r}")
        # negative: response 1 is better; positive: response 2 is better
        label: Label = "A" if preference < 0 else "B" if preference > 0 else "Tie"
        a = _reply(_text(row["response1"], where, "response1"))
        b = _reply(_text(row["response2"], where, "response2"))
        return LabeledComparison(Comparison(prompt, a, b), label, where)
