"""How to run a recipe, as opposed to what to train (its config): one typed
object every recipe's `train(config, options)` takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IF_EXISTS_VALUES = ("resume", "overwrite", "fail", "ask")


def check_if_exists(value: str) -> str:
    """`--if-exists` / `if_exists=`: one of IF_EXISTS_VALUES (checked here only)."""
    if value not in IF_EXISTS_VALUES:
        from cookbook_cli.errors import UnknownNameError

        raise UnknownNameError("--if-exists value", value, ["resume", "overwrite", "fail"])
    return value


@dataclass
class RunOptions:
    """`if_exists`: resume, overwrite, fail or ask, for a log directory that
    already holds a run. `service` replaces the engine's client (tests,
    benchmarks). `progress`: True a rich bar, False plain lines, None a bar on
    a terminal only. `on_log` receives the run's messages (default: print).
    `argv`: the command line, quoted back when the run is interrupted.
    `log_to` / `logger_options`: experiment trackers beside metrics.jsonl
    (`cookbook loggers list`)."""

    if_exists: str = "fail"
    service: Any = None
    progress: bool | None = None
    on_log: Callable[[str], None] | None = None
    argv: Sequence[str] | None = None
    log_to: Sequence[str] = ()
    logger_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_if_exists(self.if_exists)

    def say(self, message: str) -> None:
        (self.on_log or (lambda m: print(m, flush=True)))(message)
