"""Openers of core's trackers: each imports its logger module (and its package)
only when a run opens it."""

from __future__ import annotations

from typing import Any


def open_wandb(ctx: Any) -> Any:
    from cookbook_cli.loggers import wandb_logger

    return wandb_logger.open_wandb(ctx)


def open_tensorboard(ctx: Any) -> Any:
    from cookbook_cli.loggers import tensorboard_logger

    return tensorboard_logger.open_tensorboard(ctx)


def open_mlflow(ctx: Any) -> Any:
    from cookbook_cli.loggers import mlflow_logger

    return mlflow_logger.open_mlflow(ctx)


def check_wandb(options: dict[str, str]) -> None:
    from cookbook_cli.loggers import wandb_logger

    wandb_logger.check_options(options)
