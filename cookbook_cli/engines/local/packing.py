"""Where each sequence of a training batch goes: rows, and micro-batches of rows.

Pure Python, no torch. A batch of variable-length sequences is laid out as
micro-batches (one forward pass each, gradients accumulating across them), each
a (rows x width) grid in which a row holds one or more whole sequences side by
side. Every sequence keeps its own position ids and attends only within itself
(a block-diagonal causal mask), so a sequence's logits do not depend on what
shares its row; slots past a row's last sequence are padding.

Layouts (the engine's `packing` option):

- `pad`: one sequence per row, right-padded to the longest: the plain padded
  batch, kept as the reference the others are checked against;
- `rows`: first-fit-decreasing into rows as wide as the longest sequence, so
  attention costs what the padded batch's does while the pads mostly go;
- `flat`: one row per micro-batch holding its sequences end to end: no pads at
  all, but a row of N tokens attends over N x N scores unless the attention
  kernel is variable-length (flash attention), which skips across sequences;
- `auto` (default): of row capacities from the longest sequence up to the whole
  micro-batch, the layout with the least estimated compute (linear layers per
  slot plus attention scores per row) for this model and attention kernel.

`max_tokens` bounds the slots (rows x width) of one micro-batch, which bounds
its activations and logits; a sequence longer than that gets a micro-batch to
itself (a sequence is never split).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cookbook_cli.errors import CookbookError

PACKING_MODES = ("auto", "flat", "rows", "pad")


@dataclass(frozen=True)
class Placement:
    index: int  # position of the sequence in the batch
    row: int
    start: int
    length: int


@dataclass(frozen=True)
class MicroBatch:
    rows: int
    width: int
    placements: tuple[Placement, ...]

    @property
    def slots(self) -> int:
        return self.rows * self.width

    @property
    def tokens(self) -> int:
        return sum(p.length for p in self.placements)


@dataclass(frozen=True)
class CostModel:
    """Relative compute of a layout: `per_slot` for each (row, position) slot
    (linear layers, logits), `per_score` for each attention score a kernel
    computes; `varlen` kernels compute scores within each sequence only."""

    per_slot: float
    per_score: float
    varlen: bool = False

    def of(self, plan: Sequence[MicroBatch]) -> float:
        total = 0.0
        for mb in plan:
            if self.varlen:
                scores = sum(p.length * p.length for p in mb.placements) / 2
            elif all(p.start == 0 for p in mb.placements):
                scores = mb.rows * mb.width * mb.width / 2  # one sequence per row: a plain causal mask
            else:
                scores = mb.rows * mb.width * mb.width  # an arbitrary mask: every score is computed
            total += self.per_slot * mb.slots + self.per_score * scores
        return total


def check_mode(mode: str) -> str:
    if mode not in PACKING_MODES:
        raise CookbookError(f"packing {mode!r} is not a layout: use one of {', '.join(PACKING_MODES)}")
    return mode


def _first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins of sequence indices, each summing to at most `capacity` (a longer
    sequence gets a bin to itself), longest sequences placed first."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        for b, free in enumerate(room):
            if n <= free:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(capacity - n)
    return bins


def _group(rows: list[list[int]], lengths: Sequence[int], max_tokens: int, one_row: bool) -> list[MicroBatch]:
    """Rows (fullest first) into micro-batches of at most `max_tokens` slots."""
    fill = [sum(lengths[i] for i in r) for r in rows]
    order = sorted(range(len(rows)), key=lambda r: (-fill[r], rows[r]))
    plan: list[MicroBatch] = []
    current: list[int] = []
    for r in order:
        width = fill[current[0]] if current else fill[r]  # rows are sorted, so the first is the widest
        if current and (one_row or (len(current) + 1) * width > max_tokens):
            plan.append(_micro_batch([rows[c] for c in current], lengths))
            current = []
        current.append(r)
    if current:
        plan.append(_micro_batch([rows[c] for c in current], lengths))
    return plan


def _micro_batch(rows: list[list[int]], lengths: Sequence[int]) -> MicroBatch:
    placements = []
    width = 0
    for r, seqs in enumerate(rows):
        start = 0
        for i in sorted(seqs):  # batch order within a row: the layout is easy to read back
            placements.append(Placement(i, r, start, lengths[i]))
            start += lengths[i]
        width = max(width, start)
    return MicroBatch(len(rows), width, tuple(sorted(placements, key=lambda p: p.index)))


def plan_batch(
    lengths: Sequence[int],
    mode: str = "auto",
    max_tokens: int = 4096,
    cost: CostModel | None = None,
    max_row: int | None = None,
) -> list[MicroBatch]:
    """Micro-batches covering every sequence once. `max_row` caps a row's width
    (the model's position limit), `cost` ranks the `auto` candidates."""
    check_mode(mode)
    if not lengths:
        raise CookbookError("no data: forward/forward_backward need at least one Datum")
    if max_tokens < 1:
        raise CookbookError(f"max_tokens_per_microbatch must be at least 1, got {max_tokens}")
    longest = max(lengths)
    if mode == "pad":
        rows = [[i] for i in range(len(lengths))]
        plan: list[MicroBatch] = []
        per_mb = max(1, max_tokens // longest)
        for k in range(0, len(rows), per_mb):
            chunk = rows[k : k + per_mb]
            placements = tuple(Placement(i, r, 0, lengths[i]) for r, (i,) in enumerate(chunk))
            plan.append(MicroBatch(len(chunk), longest, placements))
        return plan
    # A row is never wider than a micro-batch or the model's positions, unless
    # one sequence is (it then has the row to itself).
    limit = min(max_tokens, max_row or max_tokens)
    narrow = min(longest, limit)
    if mode == "rows":
        return _group(_first_fit_decreasing(lengths, narrow), lengths, max_tokens, one_row=False)
    if mode == "flat":
        return _group(_first_fit_decreasing(lengths, limit), lengths, max_tokens, one_row=True)
    cost = cost or CostModel(per_slot=1.0, per_score=0.0)
    candidates = []
    capacity = narrow
    while True:
        candidates.append(_group(_first_fit_decreasing(lengths, capacity), lengths, max_tokens, one_row=False))
        if capacity >= limit:
            break
        capacity = min(2 * capacity, limit)
    candidates.append(_group(_first_fit_decreasing(lengths, limit), lengths, max_tokens, one_row=True))
    return min(candidates, key=cost.of)  # min keeps the first of equals: the narrowest rows
