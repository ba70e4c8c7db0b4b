"""Supervised datasets: conversations -> batches of next-token-prediction Datums.

A `SupervisedDataset` is a list of rows seen in batches by index:
`len(ds) == rows // batch_size` (a last partial batch is dropped), `get_batch(i)`
is the i-th batch of the current epoch's order, and `set_epoch(seed)` reshuffles
the rows with `datasets.Dataset.shuffle(seed=seed)`'s permutation. The recipes
call `set_epoch(epoch)`, so the batches equal tinker-cookbook's for the same
file, split and batch size, and a killed run resumes with the same data on any
machine.

`ConversationDataset` renders each conversation with a renderer (all the
batch's pieces encoded in one batched tokenizer call) and turns it into a Datum;
examples longer than `max_length` are truncated and counted, never an error.
Its `loss_reduction` sets the weights: `sum` keeps 1 per trained token (the
loss is a token sum); `mean` divides each example's weights by their sum, so
every example counts the same whatever its length (tinker-cookbook's SFT
default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.conversations import Conversation, located
from cookbook_cli.data.datum import next_token_datum
from cookbook_cli.data.order import shuffled_order
from cookbook_cli.errors import CookbookError
from cookbook_cli.types import LossReduction, TrainOnWhat

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.renderers.base import Renderer


@dataclass
class BatchStats:
    """What went into one batch: counted in the step's metrics."""

    examples: int = 0
    tokens: int = 0  # model input tokens over the batch
    loss_tokens: int = 0  # target tokens with weight > 0
    truncated: int = 0  # examples cut at max_length
    skipped: int = 0  # examples with nothing to train on after truncation
    # why they were skipped (not metrics: they add up to `skipped`)
    skipped_untrained: int = 0  # no token of the example has a training weight
    skipped_cut: int = 0  # every trained token lies past max_length

    def as_metrics(self, prefix: str = "") -> dict[str, int]:
        return {
            f"{prefix}examples": self.examples,
            f"{prefix}tokens": self.tokens,
            f"{prefix}loss_tokens": self.loss_tokens,
            f"{prefix}truncated": self.truncated,
            f"{prefix}skipped": self.skipped,
        }


@dataclass
class SupervisedBatch:
    datums: list[tinker.types.Datum]
    stats: BatchStats = field(default_factory=BatchStats)


class SupervisedDataset:
    """Base class: rows in a seeded per-epoch order, served in fixed-size batches."""

    def __init__(self, num_rows: int, batch_size: int, seed: int = 0) -> None:
        if batch_size < 1:
            raise CookbookError(f"batch_size must be at least 1, got {batch_size}")
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.seed = seed
        self._order: list[int] | None = None  # made when a batch is first asked for
        self.epoch_seed = 0
        self.set_epoch(0)

    def set_epoch(self, seed: int = 0) -> None:
        """Reshuffle: the row order is `datasets`' shuffle of the rows with `seed`
        (the dataset's own seed already chose the rows' order in the split). It
        is made on the first `batch_indices`, so a dataset only rendered in file
        order (a test split, a preference dataset's sides) never shuffles."""
        self.epoch_seed = seed
        self._order = None

    def __len__(self) -> int:
        return self.num_rows // self.batch_size

    def batch_indices(self, index: int) -> list[int]:
        """Row indices of batch `index` in the current epoch's order."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (dataset has {len(self)} batches)")
        if self._order is None:
            self._order = shuffled_order(self.num_rows, self.epoch_seed)
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def build_batch(self, index: int) -> SupervisedBatch:
        raise NotImplementedError

    def get_batch(self, index: int) -> list[tinker.types.Datum]:
        return self.build_batch(index).datums


class ConversationRendering:
    """How conversations become Datums: the renderer, the trained tokens, the
    length cap and the loss reduction. Shared by the in-memory
    `ConversationDataset` and the streaming dataset (`data/streaming.py`), which
    renders each batch's conversations only when the batch is built."""

    def __init__(
        self,
        renderer: Renderer,
        max_length: int | None = None,
        train_on_what: TrainOnWhat | str = TrainOnWhat.ALL_ASSISTANT_MESSAGES,
        loss_reduction: LossReduction | str = LossReduction.SUM,
    ) -> None:
        if max_length is not None and max_length < 2:
            raise CookbookError(f"max_length must be at least 2, got {max_length}")
        self.renderer = renderer
        self.max_length = max_length
        self.train_on_what = TrainOnWhat.parse(train_on_what)
        self.loss_reduction = LossReduction.parse(loss_reduction)

    def segments(self, conv: Conversation, where: str) -> list[tuple[str, float]]:
        """The rendered pieces of `conv`; a refusal names the conversation's
        source (else `where`)."""
        try:
            return self.renderer.segments(conv.messages, self.train_on_what, conv.tools or None)
        except CookbookError as e:
            raise located(conv.source, e, where) from None

    def encoded(self, items: Sequence[tuple[Conversation, str]]) -> list[tuple[list[int], list[float], list[int]]]:
        """Per (conversation, where): its tokens, and the weight and token count
        of each rendered piece. All pieces are encoded in one batched tokenizer call."""
        segments = [self.segments(conv, where) for conv, where in items]
        encoded = self.renderer.encode_segments([text for segs in segments for text, _ in segs])
        out = []
        k = 0
        for segs in segments:
            tokens: list[int] = []
            lengths: list[int] = []
            for ids in encoded[k : k + len(segs)]:
                tokens.extend(ids)
                lengths.append(len(ids))
            k += len(segs)
            out.append((tokens, [w for _, w in segs], lengths))
        return out

    def build(self, items: Sequence[tuple[Conversation, str]]) -> SupervisedBatch:
        """Datums of the given conversations; identical to `datum_from_tokens_weights`
        on their rendered tokens and weights, built with numpy instead of per-token Python."""
        import numpy as np

        stats = BatchStats()
        datums = []
        for tokens, seg_weights, lengths in self.encoded(items):
            n = len(tokens)
            if self.max_length is not None and n > self.max_length:
                stats.truncated += 1
                n = self.max_length
            weights = np.repeat(np.asarray(seg_weights, dtype=np.float32), lengths)
            target_weights = weights[1:n]
            loss_tokens = int(np.count_nonzero(target_weights))
            if loss_tokens == 0:
                # Nothing to learn from: no trained message at all, or the trained
                # message lies entirely past max_length.
                stats.skipped += 1
                if np.count_nonzero(weights[1:]):
                    stats.skipped_cut += 1
                else:
                    stats.skipped_untrained += 1
                continue
            stats.examples += 1
            stats.tokens += n - 1
            stats.loss_tokens += loss_tokens
            weights = weights[:n]
            if self.loss_reduction is LossReduction.MEAN:
                # Only the targets' weights (weights[1:]) count; weights[0] is never a target.
                weights[1:] /= target_weights.sum()
            datums.append(next_token_datum(tokens[:n], weights=weights))
        return SupervisedBatch(datums, stats)


class ConversationDataset(SupervisedDataset):
    """Conversations rendered with `renderer`; `train_on_what` picks the trained tokens."""

    def __init__(
        self,
        conversations: Sequence[Conversation],
        renderer: Renderer,
        batch_size: int,
        max_length: int | None = None,
        train_on_what: TrainOnWhat | str = TrainOnWhat.ALL_ASSISTANT_MESSAGES,
        seed: int = 0,
        name: str = "dataset",
        loss_reduction: LossReduction | str = LossReduction.SUM,
    ) -> None:
        self.rendering = ConversationRendering(renderer, max_length, train_on_what, loss_reduction)
        self.conversations = list(conversations)
        self.name = name
        super().__init__(len(self.conversations), batch_size, seed)

    @property
    def renderer(self) -> Renderer:
        return self.rendering.renderer

    @property
    def max_length(self) -> int | None:
        return self.rendering.max_length

    @property
    def train_on_what(self) -> TrainOnWhat:
        return self.rendering.train_on_what

    @property
    def loss_reduction(self) -> LossReduction:
        return self.rendering.loss_reduction

    def _items(self, rows: Sequence[int]) -> list[tuple[Conversation, str]]:
        return [(self.conversations[r], f"{self.name} row {r}") for r in rows]

    def _encoded(self, rows: Sequence[int]) -> list[tuple[list[int], list[float], list[int]]]:
        return self.rendering.encoded(self._items(rows))

    def tokens_and_weights(self, rows: Sequence[int]) -> list[tuple[list[int], list[float]]]:
        """Rendered (tokens, weights) of the given rows.

        Identical to `renderer.build_supervised_tokens` row by row: pieces are
        encoded independently either way; only the tokenizer call is shared."""
        out = []
        for tokens, seg_weights, lengths in self._encoded(rows):
            weights: list[float] = []
            for w, n in zip(seg_weights, lengths):
                weights.extend([w] * n)
            out.append((tokens, weights))
        return out

    def build_rows(self, rows: Sequence[int]) -> SupervisedBatch:
        """Datums of the given rows (`ConversationRendering.build`)."""
        return self.rendering.build(self._items(rows))

    def build_batch(self, index: int) -> SupervisedBatch:
        return self.build_rows(self.batch_indices(index))

    def validate(self, require_trainable: bool = True, chunk: int = 256) -> None:
        """Fail now, before any model loads, on data that would fail later.

        Every row is rendered (not tokenized: a few microseconds a row), so a row
        the renderer refuses is reported by its file and line before training
        starts rather than when its batch comes up. With `require_trainable`, it
        is an error when no row keeps a trained token after rendering and
        truncation; the tokenized scan for that stops at the first trainable row,
        so a usable dataset costs one chunk."""
        untrained = 0
        for r, conv in enumerate(self.conversations):
            segments = self.rendering.segments(conv, f"{self.name} row {r}")
            if not any(w and text for text, w in segments):
                untrained += 1
        if not require_trainable:
            return
        total = BatchStats(skipped_untrained=untrained)
        if untrained < self.num_rows:
            total.skipped_untrained = 0
            for start in range(0, self.num_rows, chunk):
                stats = self.build_rows(range(start, min(start + chunk, self.num_rows))).stats
                if stats.examples:
                    return
                total.skipped_untrained += stats.skipped_untrained
                total.skipped_cut += stats.skipped_cut
        reasons, hints = [], []
        if total.skipped_untrained:
            reasons.append(
                f"{total.skipped_untrained} have no message that train_on_what={self.train_on_what.value} trains "
                "(e.g. only user messages)"
            )
            hints.append("add assistant replies or choose another train_on_what")
        if total.skipped_cut:
            reasons.append(f"{total.skipped_cut} have every trained token past max_length={self.max_length}")
            hints.append("raise --max-length")
        raise CookbookError(
            f"dataset {self.name} has nothing to train on: none of its {self.num_rows} training rows keeps a trained token "
            f"after rendering and truncation ({'; '.join(reasons)}); {' or '.join(hints)}"
        )

    def all_batches(self) -> list[SupervisedBatch]:
        """Every row in file order, in batches (the last may be short): for evaluation."""
        n = self.num_rows
        return [self.build_rows(range(i, min(i + self.batch_size, n))) for i in range(0, n, self.batch_size)]


def split_train_test(
    items: Sequence[Any], test_size: int | float, seed: int
) -> tuple[list[Any], list[Any]]:
    """tinker-cookbook's split: the rows shuffled as `datasets.Dataset.shuffle(seed)`
    orders them, the first `test_size` (or that fraction of the rows) held out
    and the rest, still in shuffled order, trained on."""
    n = len(items)
    if isinstance(test_size, float) and 0 < test_size < 1:
        k = int(round(n * test_size))
    else:
        k = int(test_size)
    if k < 0:
        raise CookbookError(f"test_size must be >= 0, got {test_size}")
    if k >= n > 0:
        raise CookbookError(f"test_size={test_size} leaves no training rows out of {n}")
    shuffled = [items[i] for i in shuffled_order(n, seed)]
    return shuffled[k:], shuffled[:k]
