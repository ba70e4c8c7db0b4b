"""User-facing errors: one line that says what is wrong and what to do.

The CLI prints a `CookbookError` as `Error: <message>` with no traceback; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CookbookError(Exception):
    """An error caused by input or environment, explained in one line."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class UnknownNameError(CookbookError, KeyError):
    """A name that no plugin registered; the message suggests close matches."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(unknown_name_message(kind, name, self.valid, hint))

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


def unknown_name_message(kind: str, name: str, valid: list[str], hint: str = "") -> str:
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    parts = [f"unknown {kind} {name!r}."]
    if close:
        parts.append("Did you mean " + " or ".join(repr(c) for c in close) + "?")
    parts.append(f"Valid {plural(kind)}: {', '.join(valid) if valid else '(none registered)'}.")
    if hint:
        parts.append(hint)
    return " ".join(parts)


class RunInterrupted(CookbookError):
    """A run stopped by Ctrl-C or SIGTERM; the message says how to resume."""

    label = "Stopped"
    exit_code = 130


def plural(noun: str) -> str:
    """'dataset' -> 'datasets', 'model family' -> 'model families'."""
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
