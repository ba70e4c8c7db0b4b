"""Experiment trackers beside metrics.jsonl: Weights & Biases, TensorBoard,
MLflow, and any logger a plugin registers through `register_loggers`.

The run lifecycle calls `validate_logger_names(names, options)` while it
checks the config, then `open_loggers(...)` once the run directory exists, and
hands every step, checkpoint and transcript to the returned `Loggers`, which
it closes on every exit path. Importing this package imports no tracker.
"""

from cookbook_cli.loggers.base import Logger, LoggerContext
from cookbook_cli.loggers.fanout import STATE_FILE, Loggers, open_loggers, read_state
from cookbook_cli.loggers.options import parse_log_to, redact_options, split_logger_args, validate_logger_names

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
