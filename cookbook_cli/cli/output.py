"""Shared console helpers for commands."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[str]], wrap: tuple[str, ...] = ("description",)) -> None:
    """A table on stdout that fits the terminal (80 columns when piped), never
    breaking a name. The columns named in `wrap` wrap between words first, then
    any column of several words; names (cells of one word a line) never break.
    When even that is too wide, each row is printed as a block, its first cell
    on a line and the others below it, one `column  value` line each, wrapped."""
    from rich.console import Console

    console = Console()
    widths = fit_columns(columns, rows, wrap, console.width)
    if widths is None:
        sys.stdout.write("\n".join(record_lines(title, columns, rows, console.width)) + "\n")
        return
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c, w in zip(columns, widths):
        table.add_column(c, width=w, no_wrap=not _is_prose(columns.index(c), rows, wrap, columns), overflow="fold")
    for r in rows:
        table.add_row(*r)
    console.print(table)


def _is_prose(i: int, rows: list[list[str]], wrap: tuple[str, ...], columns: list[str]) -> bool:
    return columns[i] in wrap or any(len(line.split()) > 1 for r in rows for line in str(r[i]).splitlines())


def _table_width(widths: list[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1  # padding and borders


# The narrowest a column of words is made (a short header keeps its own width).
_NARROWEST_FOLD = 10


def fit_columns(columns: list[str], rows: list[list[str]], wrap: tuple[str, ...], width: int) -> list[int] | None:
    """Content widths for a table at most `width` wide, or None when it cannot
    be without breaking a name: the columns in `wrap` share what is left
    (`column_widths`), then every column of words narrows, its widest first."""
    from rich.cells import cell_len

    prose = tuple(c for i, c in enumerate(columns) if _is_prose(i, rows, wrap, columns))
    widths = column_widths(columns, rows, prose, width)
    floor = [min(w, max(cell_len(c), _NARROWEST_FOLD)) if c in prose else w for w, c in zip(widths, columns)]
    while _table_width(widths) > width:
        narrower = [j for j in range(len(widths)) if widths[j] > floor[j]]
        if not narrower:
            return None
        j = max(narrower, key=lambda k: widths[k])
        widths[j] -= min(widths[j] - floor[j], _table_width(widths) - width)
    return widths


def record_lines(title: str, columns: list[str], rows: list[list[str]], width: int) -> list[str]:
    """A table too wide for `width` as blocks: each row's first cell, then
    `  column  value` lines, values wrapped between words under themselves."""
    import textwrap

    label = max(len(c) for c in columns[1:]) if len(columns) > 1 else 0
    indent = " " * (label + 4)
    out = [title, ""]
    for r in rows:
        out.append(str(r[0]))
        for c, value in zip(columns[1:], r[1:]):
            lines = [piece for line in str(value).splitlines() or [""]
                     for piece in textwrap.wrap(line, max(width - len(indent), 20), break_long_words=False,
                                                break_on_hyphens=False) or [""]]
            out.append(f"  {c:<{label}}  {lines[0]}".rstrip())
            out.extend(f"{indent}{line}" for line in lines[1:])
        out.append("")
    return out[:-1]


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
