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
        self._start_time = time.monotonic()
        self._start_step = start
        self._progress: Any = None
        self._task: Any = None
        if not self.plain:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self._task = self._progress.add_task(description, total=total, completed=start, info="")

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
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=info)
            return
        now = time.monotonic()
        if step < self.total and now - self._last_line < self.every:
            return
        self._last_line = now
        done = step - self._start_step
        elapsed = now - self._start_time
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        print(f"{self.description} {self.unit} {step}/{self.total} {info} eta={eta:.0f}s", flush=True)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
        else:
            print(message, flush=True)
