"""Pieces of the lines a recipe prints after a run (its `summary`)."""

from __future__ import annotations


def change(a: float | None, b: float | None, fmt: str = ".3f") -> str:
    """`a -> b (+x%)`, or n/a when either is unknown."""
    if a is None or b is None:
        return "n/a"
    pct = f" ({(b - a) / a * 100:+.0f}%)" if a else ""
    return f"{a:{fmt}} -> {b:{fmt}}{pct}"


def done_line(steps: int, elapsed: float, resumed_at: int | None = None, how: str = "") -> str:
    return f"Done: {steps} steps in {elapsed:.0f}s" + (f" (resumed at step {resumed_at})" if resumed_at else "") + (f" ({how})" if how else "")
