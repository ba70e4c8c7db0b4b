"""Shared console helpers for commands."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[str]], wrap: tuple[str, ...] = ("description",)) -> None:
    """A table on stdout. Only the columns named in `wrap` (prose) wrap, and only
    between words; the others (names, lists of names, one per line) never do. A
    table that cannot fit the width (80 columns when piped) is printed wider
    rather than cutting a name or a word."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    widths = column_widths(columns, rows, wrap, console.width)
    table = Table(title=title, show_lines=False)
    for c, w in zip(columns, widths):
        table.add_column(c, width=w, no_wrap=c not in wrap, overflow="fold")
    for r in rows:
        table.add_row(*r)
    total = sum(widths) + 3 * len(columns) + 1  # padding and borders
    if total > console.width:
        console = Console(width=total)
    console.print(table)


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
