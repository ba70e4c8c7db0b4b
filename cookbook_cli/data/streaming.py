"""Datasets larger than memory: a split read as a stream, each batch parsed and
rendered only when it is built.

`StreamingConversationDataset` offers what the `sl` recipe uses of a training
set (`len`, `set_epoch`, `epoch_seed`, `build_batch(i)`, `get_batch(i)`,
`validate`, `name`, `loss_reduction`) while holding no rows:

- the epoch's order is the training rows through
  `IterableDataset.shuffle(seed=seed, buffer_size=shuffle_buffer)` with
  `set_epoch(epoch)`: a function of the seed and the epoch alone;
- `build_batch(i)` is rows `i * batch_size` to `(i + 1) * batch_size` of that
  order. A batch ahead of the open stream continues it; a batch behind it, or
  the first batch a fresh object builds (a resumed run), re-opens the epoch's
  stream and skips the rows before it without parsing or rendering them. So a
  run resumed at (epoch, batch) gets exactly the batches an uninterrupted run had;
- `len` is the row count // batch_size, the count coming from metadata (a
  parquet file's footer, a Hub dataset's split info) or `dataset.num_rows`,
  never from reading the rows.

Held-out rows are the first `test_size` rows of the split (before any
shuffling), read into a small in-memory `ConversationDataset`, and skipped by
the training stream. A row is labelled by its number in the split when the
stream has one shard (a single file: rows keep their file order up to the
shuffle buffer); a many-shard stream, whose shard order `datasets` shuffles
too, labels it by its place in the epoch's stream.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.conversations import Conversation, located, parse_conversation
from cookbook_cli.data.hf_loading import load_split, quiet_datasets, require_columns
from cookbook_cli.data.supervised import ConversationDataset, ConversationRendering, SupervisedBatch
from cookbook_cli.errors import CookbookError, first_line

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.data.builders import HfBuilder
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.types import LossReduction, TrainOnWhat

#: The column that carries each row's number in its split through the stream.
ROW = "__cookbook_row__"
#: Rows parsed and rendered by `validate` before a model loads.
FIRST_CHUNK = 256


def _numbered(example: dict[str, Any], index: int) -> dict[str, Any]:
    return {ROW: index}


def open_split(builder: HfBuilder, split: str) -> tuple[Any, bool]:
    """The split as a stream of {messages_field, ROW} rows in its own order, and
    whether ROW stays the row's number in the split once the stream is shuffled
    (one shard: `datasets` has no shard order to shuffle)."""
    label = builder.describe()
    stream = load_split(builder.path, builder.config_name, split, label, streaming=True)
    require_columns(stream, (builder.messages_field,), label, split, "set dataset.messages_field")
    exact = stream.num_shards == 1
    stream = stream.select_columns([builder.messages_field]).map(_numbered, with_indices=True)
    return stream, exact


def split_num_rows(builder: HfBuilder, split: str, stream: Any) -> int | None:
    """The split's row count without reading its rows: a local parquet file's
    footer, else the dataset's split info, else `dataset.num_rows`."""
    local = Path(builder.path).expanduser()
    if local.is_file() and local.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(str(local)).metadata.num_rows)
        except Exception as e:  # noqa: BLE001 - a damaged footer: one line for the user
            raise CookbookError(f"cannot read the row count of {str(local)!r}: {first_line(e)}") from None
    splits = getattr(stream.info, "splits", None) or {}
    info = splits.get(split) if hasattr(splits, "get") else None
    if info is not None and info.num_examples:
        return int(info.num_examples)
    return builder.num_rows


def _close(it: Iterator[Any]) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


class _Rows:
    """Iterates a stream, turning a read failure into one line naming the dataset."""

    def __init__(self, stream: Any, label: str) -> None:
        self.label = label
        with quiet_datasets():
            self._it: Iterator[dict[str, Any]] = iter(stream)
        # Close the reader when this is dropped or, at the latest, at exit: a
        # parquet reader left suspended until interpreter teardown prints an
        # "Exception ignored" traceback once pyarrow's module is gone.
        weakref.finalize(self, _close, self._it)

    def take(self, n: int | None) -> list[dict[str, Any]]:
        """The next `n` rows (None: all that are left)."""
        try:
            with quiet_datasets():
                return list(itertools.islice(self._it, n))
        except CookbookError:
            raise
        except Exception as e:  # noqa: BLE001 - a damaged file mid-stream
            raise CookbookError(f"cannot read dataset {self.label}: {first_line(e)}") from None

    def skip(self, n: int) -> int:
        """Consume up to `n` rows unparsed; how many there were."""
        skipped = 0
        while skipped < n:
            got = len(self.take(min(n - skipped, 4096)))
            if got == 0:
                break
            skipped += got
        return skipped


def parse_row(example: dict[str, Any], messages_field: str, where: str, renderer: Renderer) -> Conversation:
    """One streamed row as a Conversation the renderer can express; errors name `where`."""
    conv = parse_conversation({"messages": example[messages_field]}, where)
    try:
        renderer.check_messages(conv.messages, conv.tools or None)
    except CookbookError as e:
        raise located(where, e) from None
    return conv


class StreamingConversationDataset:
    """The training rows of a split, streamed (see the module docstring)."""

    def __init__(
        self,
        rows: Any,
        num_rows: int,
        rendering: ConversationRendering,
        batch_size: int,
        *,
        messages_field: str,
        label: str,
        name: str,
        exact_rows: bool,
        seed: int = 0,
        shuffle_buffer: int = 10_000,
    ) -> None:
        if batch_size < 1:
            raise CookbookError(f"batch_size must be at least 1, got {batch_size}")
        if shuffle_buffer < 1:
            raise CookbookError(f"dataset.shuffle_buffer must be at least 1 (1: no shuffling), got {shuffle_buffer}")
        if seed < 0:
            raise CookbookError(f"seed must be >= 0 (datasets shuffles with a non-negative seed), got {seed}")
        self.rows = rows  # the training rows in split order, each with its ROW number
        self.num_rows = num_rows
        self.rendering = rendering
        self.batch_size = batch_size
        self.messages_field = messages_field
        self.label = label  # "<dataset>[<split>]": rows are "<label> row N"
        self.name = name
        self.exact_rows = exact_rows
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.epoch_seed: int | None = None
        self._open: _Rows | None = None
        self._position = 0  # rows of the open stream consumed so far
        self.set_epoch(0)

    @property
    def loss_reduction(self) -> LossReduction:
        return self.rendering.loss_reduction

    @property
    def train_on_what(self) -> TrainOnWhat:
        return self.rendering.train_on_what

    def __len__(self) -> int:
        return self.num_rows // self.batch_size

    def set_epoch(self, seed: int = 0) -> None:
        """Reshuffle for epoch `seed`: the stream is re-opened at the next batch."""
        self.epoch_seed = seed
        self._open = None
        self._position = 0

    def _reopen(self) -> None:
        # datasets feeds the buffer from up to 10 shards at once; for that it
        # runs reader threads that sleep 5 s when the stream closes (for pyarrow's
        # sake). One shard has nothing to interleave: read it without them.
        shards = {} if self.rows.num_shards > 1 else {"max_buffer_input_shards": 1}
        stream = self.rows.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer, **shards)
        stream.set_epoch(self.epoch_seed or 0)
        self._open = _Rows(stream, self.label)
        self._position = 0

    def _where(self, example: dict[str, Any], position: int) -> str:
        if self.exact_rows:
            return f"{self.label} row {example[ROW]}"
        return f"{self.label} row {position} of epoch {self.epoch_seed}'s shuffled stream"

    def _short(self, got: int) -> CookbookError:
        return CookbookError(
            f"dataset {self.label} ended after {got} training rows but is counted as {self.num_rows}; "
            "set dataset.num_rows to its real number of rows"
        )

    def build_batch(self, index: int) -> SupervisedBatch:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (dataset has {len(self)} batches)")
        start = index * self.batch_size
        if self._open is None or start < self._position:
            self._reopen()
        assert self._open is not None
        skipped = self._open.skip(start - self._position)
        self._position += skipped
        if self._position < start:
            raise self._short(self._position)
        examples = self._open.take(self.batch_size)
        if len(examples) < self.batch_size:
            raise self._short(self._position + len(examples))
        items = []
        for j, example in enumerate(examples):
            where = self._where(example, self._position + j)
            items.append((parse_row(example, self.messages_field, where, self.rendering.renderer), where))
        self._position += len(examples)
        return self.rendering.build(items)

    def get_batch(self, index: int) -> list[tinker.types.Datum]:
        return self.build_batch(index).datums

    def first_rows(self, n: int = FIRST_CHUNK) -> list[Conversation]:
        """The split's first `n` training rows (before shuffling), parsed and checked."""
        examples = _Rows(self.rows.take(n), self.label).take(n)
        return [parse_row(ex, self.messages_field, f"{self.label} row {ex[ROW]}", self.rendering.renderer) for ex in examples]

    def validate(self, require_trainable: bool = True, chunk: int = FIRST_CHUNK) -> None:
        """Fail before any model loads on the first `chunk` rows: parsing, the
        renderer, and (with `require_trainable`) something to train on among
        them. A bad row further on fails when its batch is built, naming its row."""
        convs = self.first_rows(min(chunk, self.num_rows))
        if not convs:
            raise CookbookError(f"dataset {self.label} holds no training rows")
        r = self.rendering
        ConversationDataset(
            convs, r.renderer, len(convs), r.max_length, r.train_on_what, name=f"{self.name} (its first {len(convs)} rows)",
            loss_reduction=r.loss_reduction,
        ).validate(require_trainable)


def _test_size_count(test_size: float) -> int:
    if test_size < 0:
        raise CookbookError(f"dataset.test_size must be >= 0 (a number of rows), got {test_size}")
    if 0 < test_size < 1:
        raise CookbookError(
            f"dataset.test_size={test_size} is a fraction; with dataset.streaming=true give a number of rows "
            "(the first N rows of the split are held out)"
        )
    return int(round(test_size))


def build_streaming(
    builder: HfBuilder,
    renderer: Renderer,
    batch_size: int,
    max_length: int | None,
    train_on_what: TrainOnWhat | str,
    seed: int,
    loss_reduction: LossReduction | str,
) -> tuple[StreamingConversationDataset, ConversationDataset | None]:
    """The `hf` builder with `streaming=true`: a streamed training split and an
    in-memory test set (the test split, or the first `test_size` rows held out)."""
    held_out = 0 if builder.test_split else _test_size_count(builder.test_size)
    if builder.num_rows is not None and builder.num_rows < 1:
        raise CookbookError(f"dataset.num_rows must be at least 1, got {builder.num_rows}")
    if builder.max_rows is not None and builder.max_rows < 1:
        raise CookbookError(f"dataset.max_rows must be at least 1, got {builder.max_rows}")
    rendering = ConversationRendering(renderer, max_length, train_on_what, loss_reduction)
    name = builder.describe()
    split = builder.train_split
    stream, exact = open_split(builder, split)
    # Without a count, max_rows is one (a split shorter than it fails at the batch it runs out in).
    total = split_num_rows(builder, split, stream) or builder.max_rows
    if total is None:
        raise CookbookError(
            f"dataset {name!r} split {split!r} does not say how many rows it has; "
            "set dataset.num_rows=N (its row count) or dataset.max_rows=N"
        )
    if builder.max_rows is not None:
        total = min(total, builder.max_rows)
        stream = stream.take(builder.max_rows)
    if held_out >= total:
        raise CookbookError(f"dataset.test_size={held_out} leaves no training rows out of {total}")
    label = f"{name}[{split}]"
    test_convs: list[Conversation] = []
    if held_out:
        test_convs = [
            parse_row(ex, builder.messages_field, f"{label} row {ex[ROW]}", renderer)
            for ex in _Rows(stream.take(held_out), label).take(held_out)
        ]
        stream = stream.skip(held_out)
    elif builder.test_split:
        test_stream, _ = open_split(builder, builder.test_split)
        test_label = f"{name}[{builder.test_split}]"
        test_convs = [
            parse_row(ex, builder.messages_field, f"{test_label} row {ex[ROW]}", renderer)
            for ex in _Rows(test_stream, test_label).take(None)
        ]
    train = StreamingConversationDataset(
        stream, total - held_out, rendering, batch_size, messages_field=builder.messages_field, label=label, name=name,
        exact_rows=exact, seed=seed, shuffle_buffer=builder.shuffle_buffer,
    )
    if len(train) == 0:
        raise CookbookError(
            f"dataset {name} has {train.num_rows} training rows, fewer than one batch of {batch_size}; lower --batch-size"
        )
    train.validate()
    test = None
    if test_convs:
        test = ConversationDataset(
            test_convs, renderer, batch_size, max_length, train_on_what, seed=seed, name=f"{name} (test)", loss_reduction=loss_reduction
        )
        test.validate(require_trainable=False)
    return train, test
