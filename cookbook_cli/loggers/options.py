"""Which loggers a run uses and their options, from the command line, checked
before anything is written.

`--log-to wandb,tensorboard` names the loggers; `logger.<name>.<field>=value`
words set their options. Every name and field is checked against what the
loggers registered, so a typo fails the run in one line before it starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cookbook_cli.errors import CookbookError, UnknownNameError

PREFIX = "logger."
_USERINFO = re.compile(r"(?<=://)[^/@\s]*:[^/@\s]*@")


def parse_log_to(value: str | Sequence[str] | None) -> list[str]:
    """`"wandb, tensorboard"` (or a list of such strings) -> `["wandb", "tensorboard"]`,
    in order, without duplicates or empty names."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    names: list[str] = []
    for part in parts:
        for n in part.split(","):
            n = n.strip()
            if n and n not in names:
                names.append(n)
    return names


def split_logger_args(words: Sequence[str]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Separate `logger.<name>.<field>=value` words from the others (which go
    on to the recipe's config). Returns (other words, {name: {field: value}})."""
    rest: list[str] = []
    options: dict[str, dict[str, str]] = {}
    for w in words:
        if not w.startswith(PREFIX):
            rest.append(w)
            continue
        key, eq, value = w.partition("=")
        parts = key[len(PREFIX) :].split(".")
        if not eq or len(parts) != 2 or not all(parts):
            raise CookbookError(f"cannot read {w!r}: a logger option is written logger.<name>.<field>=<value>, e.g. logger.wandb.project=my-project")
        name, fld = parts
        options.setdefault(name, {})[fld] = value
    return rest, options


def validate_logger_names(names: Sequence[str], options: Mapping[str, Mapping[str, str]] | None = None) -> None:
    """Check logger names and options against the registered loggers; raises a
    one-line CookbookError naming the culprit and the valid choices. Cheap: no
    tracker is imported."""
    from cookbook_cli.plugins import registry

    options = options or {}
    for name in names:
        if name not in registry.loggers:
            raise UnknownNameError("logger", name, registry.loggers.names(), "Run `cookbook loggers list` to see them all.")
    for name, opts in options.items():
        if name not in names:
            hint = f"add --log-to {name}" if name in registry.loggers else f"no logger is called {name!r}"
            raise CookbookError(f"logger.{name}.* options were given but --log-to does not name {name!r}: {hint}")
        entry = registry.loggers.get(name)
        fields: Mapping[str, str] = entry.extra.get("fields") or {}
        for fld, value in opts.items():
            if fld not in fields:
                valid = ", ".join(sorted(fields)) if fields else "(it takes no options)"
                raise CookbookError(f"unknown option logger.{name}.{fld}: logger {name!r} takes {valid}")
        check = entry.extra.get("check_options")
        if callable(check):
            check(dict(opts))


def redact_options(options: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Logger options as they may be recorded in config.json: secret-named
    fields masked, passwords in URIs (`https://user:pass@host`) removed."""
    from cookbook_cli.config import redact

    masked = {n: {f: _USERINFO.sub("***@", v) if isinstance(v, str) else v for f, v in o.items()} for n, o in options.items()}
    return redact(masked)
