"""The judge every test of this folder trains: `train pm` on the shipped
sample, small enough for a loaded CPU, long enough to reach >= 0.9 held-out
accuracy."""

from __future__ import annotations

from pathlib import Path

PM_STEPS = 20
PM_ARGS = ["train", "pm", "--max-steps", str(PM_STEPS), "--batch-size", "8", "--lr", "3e-3", "--lora-rank", "0", "min_lr_ratio=0.6667", "--eval-every", "10", "--save-every", "4"]


def pm_args(log_dir: Path, *extra: str) -> list[str]:
    return [*PM_ARGS, "--log-dir", str(log_dir), *extra]
