"""What a logger is, what it is given to open, and the helpers trackers share.

A logger is opened by its registered factory, `factory(ctx: LoggerContext)`,
which receives the run's (secret-redacted) config once; it is then given each
step's metrics, each finished checkpoint, and HTML transcripts / images, and
closed once. Subclassing `Logger` is optional: any object with the methods
works, and a missing method means the logger ignores that kind of data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINISHED, FAILED, KILLED = "finished", "failed", "killed"

# Environment variables whose values must never be written anywhere.
_SECRET_ENV = re.compile(r"(?i)(api[_-]?key|secret|password|passwd|token|credential)")


class Logger:
    """Base class with no-op methods; override what the tracker can show."""

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """One step's metrics, as written to metrics.jsonl (without `step`)."""

    def log_checkpoint(self, record: Mapping[str, Any]) -> None:
        """A checkpoint whose files are completely written (its checkpoints.jsonl record)."""

    def log_html(self, name: str, path: Path, step: int) -> None:
        """A self-contained HTML file (e.g. sampled transcripts) written at `step`."""

    def log_image(self, name: str, path: Path, step: int) -> None:
        """An image file (PNG or JPEG) written at `step`."""

    def close(self, status: str = FINISHED) -> None:
        """Called once; `status` is "finished", "failed" or "killed"."""


@dataclass
class LoggerContext:
    """What a logger factory gets to open its tracker.

    `state` is this logger's entry of `trackers.json` in the run directory:
    what the factory stores there (a tracker run id) is saved after it opens,
    and on resume it holds what the previous process stored."""

    name: str
    run_dir: Path
    config: Mapping[str, Any]
    resuming: bool
    options: Mapping[str, str]
    state: dict[str, Any]
    warn: Callable[[str], None]
    claimed: list[Path] = field(default_factory=list)

    @property
    def run_name(self) -> str:
        return self.run_dir.resolve().name

    def claim(self, relative: str) -> Path:
        """Declare a path inside the run directory that this logger writes
        (so `--if-exists overwrite` removes it); returns it absolute."""
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"a logger may only claim paths inside the run directory, got {relative!r}")
        if rel not in self.claimed:
            self.claimed.append(rel)
        return self.run_dir / rel


def secret_values() -> list[str]:
    """Values of secret-looking environment variables (long enough to be real)."""
    return [v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8]


def scrub(text: str) -> str:
    """`text` with the value of any secret environment variable replaced by ***."""
    for v in secret_values():
        text = text.replace(v, "***")
    return text


def error_line(e: BaseException, limit: int = 400) -> str:
    """An exception as one line (type and message), secrets scrubbed."""
    msg = " ".join(scrub(str(e)).split())
    msg = msg if len(msg) <= limit else msg[: limit - 3] + "..."
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def safe_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with secret-named keys redacted and secret env values scrubbed
    from every string: what trackers are allowed to see."""
    secrets = secret_values()

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, str):
            for s in secrets:
                v = v.replace(s, "***")
        return v

    from cookbook_cli.config import redact  # chz-free callers: imported on use

    return clean(redact(dict(config)))


def flatten(obj: Mapping[str, Any], sep: str = "/", prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(key, value) pairs of a nested mapping, keys joined with `sep`."""
    for k, v in obj.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            yield from flatten(v, sep, key)
        else:
            yield key, v


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float | int]:
    """The numbers among `metrics` (nested keys joined with "/"): bools become
    0/1, numpy/torch scalars plain numbers; None, strings and other values are
    left out. Non-finite numbers are kept: each tracker decides what to do."""
    out: dict[str, float | int] = {}
    for key, v in flatten(metrics):
        if hasattr(v, "item") and not isinstance(v, (int, float)):
            try:
                v = v.item()
            except (TypeError, ValueError):  # an array of several values
                continue
        if isinstance(v, bool):
            out[key] = int(v)
        elif isinstance(v, (int, float)):
            out[key] = v
    return out
