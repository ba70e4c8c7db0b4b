"""Progress for long loops: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float):
        if key == "lr":
            return f"{key}={value:.2e}"
        return f"{key}={value:.4g}"
    return f"{key}={value}"


class Eta:
    """Seconds left, from the time per step of the steps after the first.

    The first step holds the warm-up (allocations, kernel choice, the first
    batch's data, a model still loading in the background), often many times a
    later step, so it is never counted; nothing is estimated until `min_steps`
    later steps are timed. Later steps are averaged with an exponential
    weighting, so a changing pace (sequence lengths, a busy machine) is followed
    within a few steps."""

    def __init__(self, total: int, min_steps: int = 2, weight: float = 0.3) -> None:
        self.total = total
        self.min_steps = min_steps
        self.weight = weight
        self._prev: tuple[int, float] | None = None  # (step, time) of the last update
        self._per_step: float | None = None
        self._timed = 0  # steps whose time is in the average
        self._warm = False

    def update(self, step: int, now: float) -> float | None:
        """Record that `step` steps are done at time `now`; the seconds left, once known."""
        if self._prev is not None and step > self._prev[0] and not self._warm:
            self._warm = True  # the first interval after the start is the warm-up: not counted
        elif self._prev is not None and step > self._prev[0]:
            n = step - self._prev[0]
            per = (now - self._prev[1]) / n
            w = 1 - (1 - self.weight) ** n  # n steps at once weigh as n updates
            self._per_step = per if self._per_step is None else (1 - w) * self._per_step + w * per
            self._timed += n
        if self._prev is None or step > self._prev[0]:
            self._prev = (step, now)
        return self.seconds_left(step)

    def seconds_left(self, step: int) -> float | None:
        if step >= self.total:
            return 0.0
        if self._per_step is None or self._timed < self.min_steps:
            return None
        return max(self.total - step, 0) * self._per_step


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "eta=?"
    return f"eta={seconds:.0f}s" if seconds < 120 else f"eta={seconds / 60:.0f}min"


class StepProgress:
    """`update(step, **fields)` after each step; fields show beside the bar."""

    def __init__(
        self, total: int, description: str, start: int = 0, plain: bool | None = None, unit: str = "step", every: float = 0.0
    ) -> None:
        self.total = total
        self.description = description
        self.unit = unit  # what is counted, in the plain lines ("step 3/10")
        self.every = every  # plain lines at most this often (seconds), and the last one
        self._last_line = float("-inf")
        self.plain = (not sys.stdout.isatty()) if plain is None else plain
        self._eta = Eta(total)
        self._eta.update(start, time.monotonic())  # the steps before `start` ran in an earlier process
        self._progress: Any = None
        self._task: Any = None
        if not self.plain:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[eta]}"),
                TextColumn("{task.fields[info]}"),
            )
            self._task = self._progress.add_task(description, total=total, completed=start, info="", eta=format_eta(None))

    def __enter__(self) -> StepProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, step: int, **fields: Any) -> None:
        """`step` is the number of completed steps."""
        info = " ".join(_fmt(k, v) for k, v in fields.items() if v is not None)
        now = time.monotonic()
        eta = format_eta(self._eta.update(step, now))
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=info, eta=eta)
            return
        if step < self.total and now - self._last_line < self.every:
            return
        self._last_line = now
        print(f"{self.description} {self.unit} {step}/{self.total} {info} {eta}", flush=True)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            print(message, flush=True)
