"""Weights & Biases.

The tracker's files go to `<run>/wandb/`. The run id is chosen here and kept
in trackers.json, so a resumed cookbook run reopens the same W&B run
(`resume="allow"`). WANDB_MODE (offline, disabled) and the other WANDB_*
variables are honoured; `logger.wandb.mode=` overrides WANDB_MODE.

What W&B is not given: system metadata (it includes the command line, which
may hold a secret, and git remotes), code, and the console output.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.loggers.base import FAILED, KILLED, Logger, LoggerContext, scalar_metrics

MODES = ("online", "offline", "disabled")


def check_options(options: Mapping[str, str]) -> None:
    mode = options.get("mode")
    if mode is not None and mode not in MODES:
        raise CookbookError(f"logger.wandb.mode={mode!r} is not one of {', '.join(MODES)}")


def _new_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


class WandbLogger(Logger):
    def __init__(self, run: Any) -> None:
        self.run = run

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        # NaN and inf are kept: W&B stores them and leaves a gap in the chart.
        values = scalar_metrics(metrics)
        if values:
            self.run.log(values, step=step)

    def log_checkpoint(self, record: Mapping[str, Any]) -> None:
        keep = ("step", "name", "state_path", "sampler_path", "final")
        self.run.summary["checkpoint"] = {k: record[k] for k in keep if k in record}

    def log_html(self, name: str, path: Path, step: int) -> None:
        import wandb

        self.run.log({name: wandb.Html(path.read_text(encoding="utf-8"))}, step=step)

    def log_image(self, name: str, path: Path, step: int) -> None:
        import wandb

        self.run.log({name: wandb.Image(str(path))}, step=step)

    def close(self, status: str = "finished") -> None:
        self.run.finish(exit_code=1 if status in (FAILED, KILLED) else 0)


def open_wandb(ctx: LoggerContext) -> WandbLogger:
    import os

    import wandb

    o = ctx.options
    run_id = ctx.state.get("run_id") or _new_id()
    ctx.state["run_id"] = run_id
    wandb_dir = ctx.claim("wandb")
    wandb_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(
        console="off",
        x_disable_meta=True,
        save_code=False,
        disable_git=True,
        silent=True,
    )
    run = wandb.init(
        project=o.get("project") or os.environ.get("WANDB_PROJECT") or "cookbook",
        entity=o.get("entity") or None,
        name=o.get("name") or ctx.run_name,
        tags=[t.strip() for t in o.get("tags", "").split(",") if t.strip()] or None,
        group=o.get("group") or None,
        notes=o.get("notes") or None,
        mode=o.get("mode") or None,  # type: ignore[arg-type]
        dir=str(ctx.run_dir),  # W&B makes its own `wandb/` folder inside
        id=run_id,
        resume="allow",
        reinit="create_new",
        settings=settings,
    )
    # allow_val_change: a resumed run may change a setting (e.g. more steps).
    run.config.update(dict(ctx.config), allow_val_change=True)
    ctx.state["project"] = run.project
    if run.entity:
        ctx.state["entity"] = run.entity
    return WandbLogger(run)
