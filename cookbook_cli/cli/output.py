"""Shared console helpers for commands."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[str]], wrap: tuple[str, ...] = ("description",)) -> None:
    """A table on stdout that fits the terminal (80 columns when piped). Only the
    columns named in `wrap` (prose) wrap between words while that is enough;
    past that the widest columns fold, and when even that cannot fit, the
    rightmost columns are left out and named under the table (`--json` has all)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    kept, widths = fit_columns(columns, rows, wrap, console.width)
    natural = column_widths(columns, rows, wrap, 10**6)
    table = Table(title=title, show_lines=False)
    for i, w in zip(kept, widths):
        folds = columns[i] in wrap or w < natural[i]
        table.add_column(columns[i], width=w, no_wrap=not folds, overflow="fold")
    for r in rows:
        table.add_row(*(r[i] for i in kept))
    dropped = [c for i, c in enumerate(columns) if i not in kept]
    if dropped:
        table.caption = f"not shown at this width: {', '.join(dropped)} (widen the terminal, or use --json)"
    console.print(table)


def _table_width(widths: list[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1  # padding and borders


# The narrowest a column is folded to (a short header keeps its own width).
_NARROWEST_FOLD = 8


def fit_columns(columns: list[str], rows: list[list[str]], wrap: tuple[str, ...], width: int) -> tuple[list[int], list[int]]:
    """(indices of the columns shown, their content widths) for a table at most
    `width` wide: prose wraps first (`column_widths`), then the widest column
    folds a character at a time, then the last columns go (the first stays)."""
    from rich.cells import cell_len

    kept = list(range(len(columns)))
    while True:
        sub_rows = [[r[i] for i in kept] for r in rows]
        sub_cols = [columns[i] for i in kept]
        widths = column_widths(sub_cols, sub_rows, wrap, width)
        floor = [min(w, max(cell_len(c), _NARROWEST_FOLD)) for w, c in zip(widths, sub_cols)]
        while _table_width(widths) > width:
            shrinkable = [j for j in range(len(widths)) if widths[j] > floor[j]]
            if not shrinkable:
                break
            j = max(shrinkable, key=lambda k: widths[k])
            widths[j] -= 1
        if _table_width(widths) <= width or len(kept) == 1:
            return kept, widths
        kept.pop()


# A "word" longer than this in a wrapping column (a run of special tokens, say)
# is folded rather than widening the whole table for it.
_LONGEST_WORD = 40
_NARROWEST_PROSE = 24  # a wrapping column is never made narrower than this (unless all of it is)


def column_widths(columns: list[str], rows: list[list[str]], wrap: tuple[str, ...], width: int) -> list[int]:
    """Content width of each column: the longest line for columns that do not
    wrap; for those that do, their longest line if everything fits in `width`,
    else at least their longest word, sharing what is left in proportion."""
    from rich.cells import cell_len

    def longest(i: int, words: bool) -> int:
        parts = [p for r in rows for p in (str(r[i]).split() if words else str(r[i]).splitlines())]
        return max([cell_len(columns[i]), *(cell_len(p) for p in parts)])

    natural = [longest(i, False) for i in range(len(columns))]
    wrapping = [i for i, c in enumerate(columns) if c in wrap]
    minimum = {i: min(max(longest(i, True), _NARROWEST_PROSE), _LONGEST_WORD, natural[i]) for i in wrapping}
    fixed = sum(natural[i] for i in range(len(columns)) if i not in minimum)
    room = width - 3 * len(columns) - 1 - fixed
    if sum(natural[i] for i in wrapping) <= room:
        return natural
    out = list(natural)
    spare = max(room - sum(minimum.values()), 0)
    slack = {i: natural[i] - minimum[i] for i in wrapping}
    total_slack = sum(slack.values()) or 1
    for i in wrapping:
        out[i] = minimum[i] + spare * slack[i] // total_slack
    return out
