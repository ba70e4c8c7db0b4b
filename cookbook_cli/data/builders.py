"""Supervised dataset builders: chz configs that load conversations and split them.

A builder is registered by name through `register_dataset_builders`; the `sl`
recipe picks one with `--dataset NAME` (or a .jsonl path) and reaches its fields
with `dataset.FIELD=value`. Subclasses implement `load()` returning train and
test conversations; `build()` turns them into `ConversationDataset`s with the
recipe's renderer, batch size, max length and train_on_what.

Built-ins:
- `conversations`: a JSONL file of `{"messages": [...]}` lines (the sample
  shipped with the package when no path is given), split as tinker-cookbook's
  `FromConversationFileBuilder` splits it (shuffled with the seed, the first
  `test_size` rows held out);
- `hf`: any Hugging Face dataset (Hub id, local folder, or a parquet/JSON/JSONL
  file) with a messages column; `streaming=true` reads it as a stream
  (`data/streaming.py`) for datasets larger than memory;
- `no_robots`: HuggingFaceH4/no_robots, the `hf` builder with its defaults.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import chz

from cookbook_cli.conversations import Conversation, load_conversations, parse_conversation
from cookbook_cli.data.hf_loading import load_split, require_columns
from cookbook_cli.data.supervised import ConversationDataset, split_train_test
from cookbook_cli.errors import CookbookError
from cookbook_cli.types import LossReduction

if TYPE_CHECKING:
    from cookbook_cli.data.streaming import StreamingConversationDataset
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.types import TrainOnWhat

    #: What `build` returns for training: rows in memory, or streamed.
    SupervisedData = ConversationDataset | StreamingConversationDataset

SAMPLE_FILE = "sample_conversations.jsonl"


def sample_conversations_path() -> Path:
    """The sample conversation file shipped inside the package."""
    return Path(str(resources.files("cookbook_cli.data").joinpath(SAMPLE_FILE)))


@chz.chz
class SupervisedDatasetBuilder:
    """Base of every supervised dataset builder."""

    def load(self, seed: int) -> tuple[list[Conversation], list[Conversation]]:
        """Train and test conversations (test may be empty)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def describe(self) -> str:
        return type(self).__name__

    def build(
        self,
        renderer: Renderer,
        batch_size: int,
        max_length: int | None,
        train_on_what: TrainOnWhat | str,
        seed: int = 0,
        loss_reduction: LossReduction | str = LossReduction.MEAN,
    ) -> tuple[SupervisedData, ConversationDataset | None]:
        """Train and test datasets; `load(seed)` gives the training rows in their
        shuffled order, and each epoch reshuffles them (`set_epoch`). Each
        example's token losses are averaged by default (`loss_reduction`), as
        in `train sl` and tinker-cookbook's builders."""
        train, test = self.load(seed)
        name = self.describe()
        if not train:
            raise CookbookError(f"dataset {name} has no training conversations")
        options = {"seed": seed, "loss_reduction": loss_reduction}
        train_ds = ConversationDataset(train, renderer, batch_size, max_length, train_on_what, name=name, **options)
        train_ds.validate()
        if len(train_ds) == 0:
            raise CookbookError(
                f"dataset {name} has {len(train)} training conversations, fewer than one batch of {batch_size}; "
                "lower --batch-size"
            )
        test_ds = (
            ConversationDataset(test, renderer, batch_size, max_length, train_on_what, name=f"{name} (test)", **options)
            if test
            else None
        )
        if test_ds is not None:
            test_ds.validate(require_trainable=False)
        return train_ds, test_ds


def _check_test_size(test_size: float) -> None:
    if test_size < 0:
        raise CookbookError(f"dataset.test_size must be >= 0 (a fraction below 1, or a number of rows), got {test_size}")


@chz.chz
class ConversationsBuilder(SupervisedDatasetBuilder):
    """A JSONL file of {"messages": [...]} lines, split into train and test with a seed."""

    path: str | None = chz.field(default=None, doc="JSONL file; default: the sample shipped with cookbook")
    test_size: float = chz.field(default=0.1, doc="held-out rows: a fraction below 1, or a count")

    def resolved_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else sample_conversations_path()

    def describe(self) -> str:
        return str(self.resolved_path()) if self.path else f"sample ({SAMPLE_FILE})"

    def load(self, seed: int) -> tuple[list[Conversation], list[Conversation]]:
        _check_test_size(self.test_size)
        convs = load_conversations(self.resolved_path())
        return split_train_test(convs, _as_count_or_fraction(self.test_size), seed)


def _as_count_or_fraction(test_size: float) -> int | float:
    return test_size if 0 < test_size < 1 else int(round(test_size))


@chz.chz
class HfBuilder(SupervisedDatasetBuilder):
    """A Hugging Face dataset with a messages column: a Hub id, a local dataset
    folder, or a parquet/JSON/JSONL/CSV file."""

    path: str = chz.field(doc="Hub dataset id (owner/name), a local folder, or a .parquet/.json/.jsonl file")
    config_name: str | None = chz.field(default=None, doc="the dataset's configuration (load_dataset's name)")
    train_split: str = chz.field(default="train", doc="split to train on")
    test_split: str | None = chz.field(default=None, doc="split to evaluate on; none: hold out test_size rows")
    test_size: float = chz.field(default=0.0, doc="held-out rows when there is no test split")
    messages_field: str = chz.field(default="messages", doc="column holding the list of messages")
    max_rows: int | None = chz.field(default=None, doc="use only the first N training rows")
    streaming: bool = chz.field(
        default=False,
        doc="read the training split as a stream, each batch parsed and rendered when it is built (datasets larger than memory)",
    )
    shuffle_buffer: int = chz.field(
        default=10_000,
        doc="with streaming: rows held in the shuffle buffer (the order shuffles within this window of the split's order)",
    )
    num_rows: int | None = chz.field(
        default=None, doc="with streaming: the training split's row count, when neither a parquet footer nor the dataset's info says it"
    )

    def describe(self) -> str:
        return self.path + (f" ({self.config_name})" if self.config_name else "")

    def build(
        self,
        renderer: Renderer,
        batch_size: int,
        max_length: int | None,
        train_on_what: TrainOnWhat | str,
        seed: int = 0,
        loss_reduction: LossReduction | str = LossReduction.MEAN,
    ) -> tuple[SupervisedData, ConversationDataset | None]:
        if not self.streaming:
            return super().build(renderer, batch_size, max_length, train_on_what, seed, loss_reduction)
        from cookbook_cli.data.streaming import build_streaming

        return build_streaming(self, renderer, batch_size, max_length, train_on_what, seed, loss_reduction)

    def _conversations(self, split: str, limit: int | None = None) -> list[Conversation]:
        ds = load_split(self.path, self.config_name, split, self.describe())
        require_columns(ds, (self.messages_field,), self.describe(), split, "set dataset.messages_field")
        column = ds[self.messages_field] if limit is None else ds.select(range(min(limit, len(ds))))[self.messages_field]
        out = []
        for i, messages in enumerate(column):
            out.append(parse_conversation({"messages": messages}, f"{self.describe()}[{split}] row {i}"))
        if not out:
            raise CookbookError(f"dataset {self.describe()!r} split {split!r} holds no rows")
        return out

    def load(self, seed: int) -> tuple[list[Conversation], list[Conversation]]:
        _check_test_size(self.test_size)
        train = self._conversations(self.train_split, self.max_rows)
        if self.test_split:
            return split_train_test(train, 0, seed)[0], self._conversations(self.test_split)
        return split_train_test(train, _as_count_or_fraction(self.test_size), seed)


@chz.chz
class NoRobotsBuilder(HfBuilder):
    """HuggingFaceH4/no_robots: 9,500 human-written instruction-following conversations."""

    path: str = chz.field(default="HuggingFaceH4/no_robots", doc="Hub id, or a local copy with the same schema")
    test_split: str | None = chz.field(default="test", doc="split to evaluate on")
