"""Experiment trackers beside metrics.jsonl: Weights & Biases, TensorBoard,
MLflow, and any logger a plugin registers through `register_loggers`.

The run lifecycle calls `validate_logger_names(names, options)` while it
checks the config, then `open_loggers(...)` once the run directory exists, and
hands every step, checkpoint and transcript to the returned `Loggers`, which
it closes on every exit path. Importing this package imports no tracker.
"""

from typing import Any

# Loaded on first use: plugin loading imports this package for its `builtin`
# openers only, and must import nothing else.
_HOME = {
    "Logger": "base", "LoggerContext": "base",
    "STATE_FILE": "fanout", "Loggers": "fanout", "open_loggers": "fanout", "read_state": "fanout",
    "parse_log_to": "options", "redact_options": "options", "split_logger_args": "options", "validate_logger_names": "options",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = [
    "STATE_FILE",
    "Logger",
    "LoggerContext",
    "Loggers",
    "open_loggers",
    "parse_log_to",
    "read_state",
    "redact_options",
    "split_logger_args",
    "validate_logger_names",
]
