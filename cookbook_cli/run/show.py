"""Reading a finished (or running) run's log directory: config, metrics,
checkpoints, and its curves, in the terminal or as an image."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.files import CHECKPOINTS, CONFIG, METRICS, read_jsonl

#: Config fields shown first in a summary, when present.
SUMMARY_KEYS = (
    "engine", "model", "renderer", "dataset", "env", "batch_size", "group_size", "groups_per_batch",
    "learning_rate", "lr_schedule", "epochs", "max_steps", "lora_rank", "max_length", "loss_reduction", "loss", "beta", "reference", "init_from", "seed",
)
#: Curves shown when the run logged them: metric key -> label (sl: losses; rl: reward; dpo: loss, held-out accuracy and margin).
CURVES = {
    "loss": "train loss",
    "test_nll": "test NLL",
    "env/reward/mean": "mean reward",
    "dpo_loss": "train DPO loss",
    "test/accuracy": "test accuracy",
    "test/margin": "test margin",
    "teacher_kl": "teacher KL",
}
#: Metrics that mark an evaluation row, by recipe.
EVAL_KEYS = ("test_nll", "test/accuracy")


@dataclass
class RunSummary:
    """What `runs show` reads of a run directory: its config, metrics and checkpoint records."""

    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]

    def series(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of every metrics row holding a finite `key`."""
        out = []
        for row in self.metrics:
            v = row.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out.append((int(row.get("step", 0)), float(v)))
        return out

    def last_row(self, key: str | None = None) -> dict[str, Any] | None:
        """The last row holding `key` (default: the last step's row, not the final evaluation)."""
        rows = [r for r in self.metrics if (key in r if key else not r.get("final"))]
        return rows[-1] if rows else None

    def steps_logged(self) -> int:
        return sum(1 for r in self.metrics if not r.get("final"))


def load_run(path: str | Path) -> RunSummary:
    p = Path(path).expanduser()
    if not p.exists():
        raise CookbookError(f"log directory {str(p)!r} does not exist")
    if not p.is_dir():
        raise CookbookError(f"{str(p)!r} is a file, not a log directory")
    if not any((p / f).exists() for f in (CONFIG, METRICS, CHECKPOINTS)):
        raise CookbookError(f"{str(p)!r} holds no run (no {CONFIG}, {METRICS} or {CHECKPOINTS})")
    config: dict[str, Any] = {}
    if (p / CONFIG).is_file():
        try:
            config = json.loads((p / CONFIG).read_text(encoding="utf-8"))
        except ValueError as e:
            raise CookbookError(f"{p / CONFIG} is not valid JSON: {e}") from None
    return RunSummary(p, config, read_jsonl(p / METRICS), read_jsonl(p / CHECKPOINTS))


def summary_items(config: dict[str, Any]) -> list[tuple[str, str]]:
    def fmt(v: Any) -> str:
        if isinstance(v, dict):
            key = "registry_name" if "registry_name" in v else "name"
            name = v.get(key)
            rest = ", ".join(f"{k}={val}" for k, val in v.items() if k != key and val not in (None, {}, []))
            return f"{name} ({rest})" if name and rest else str(name or rest)
        return str(v)

    return [(k, fmt(config[k])) for k in SUMMARY_KEYS if k in config and config[k] is not None]


def ascii_chart(
    series: dict[str, list[tuple[int, float]]], width: int = 64, height: int = 14, marks: str = "•o*+x"
) -> list[str]:
    """A text chart of one or more (x, y) series sharing axes; the legend is the
    last line. Later series are drawn over earlier ones."""
    points = [pt for s in series.values() for pt in s]
    if not points:
        return ["(no data)"]
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    grid = [[" "] * width for _ in range(height)]
    for mark, pts in zip(marks, series.values()):
        for x, y in pts:
            col = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (width - 1))
            row = round((y1 - y) / (y1 - y0) * (height - 1))
            grid[row][col] = mark
    label_w = max(len(f"{y1:.3g}"), len(f"{y0:.3g}"))
    lines = []
    for i, row in enumerate(grid):
        label = f"{y1:.3g}" if i == 0 else f"{y0:.3g}" if i == height - 1 else ""
        lines.append(f"{label:>{label_w}} |" + "".join(row))
    lines.append(" " * label_w + " +" + "-" * width)
    lines.append(" " * label_w + f"  step {x0}" + f"step {x1}".rjust(width - len(f"step {x0}")))
    lines.append(" " * label_w + "  " + "   ".join(f"{m} {name}" for m, name in zip(marks, series)))
    return lines


def plot_png(run: RunSummary, out: str | Path, keys: tuple[str, ...] = tuple(CURVES)) -> Path:
    """Write the run's curves to an image (needs matplotlib: the `plot` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CookbookError("--plot needs matplotlib: pip install 'cookbook-cli[plot]'") from None
    out = Path(out).expanduser()
    if out.parent and not out.parent.exists():
        raise CookbookError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} does not exist")
    extra = [k for k in ("lr", "tokens_per_s") if run.series(k)]
    fig, axes = plt.subplots(1 + len(extra), 1, figsize=(8, 4 + 2.2 * len(extra)), squeeze=False)
    ax = axes[0][0]
    for key in keys:
        pts = run.series(key)
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o" if key in EVAL_KEYS else None, label=CURVES.get(key, key))
    ax.set_xlabel("step")
    ax.set_ylabel("NLL per token" if run.series("loss") or run.series("test_nll") else "value")
    ax.set_title(f"{run.config.get('model', '')} on {summary_items({'dataset': run.config.get('dataset')})[0][1] if run.config.get('dataset') else run.path.name}", fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    for i, key in enumerate(extra, start=1):
        pts = run.series(key)
        axes[i][0].plot([x for x, _ in pts], [y for _, y in pts])
        axes[i][0].set_ylabel(key)
        axes[i][0].grid(alpha=0.3)
    axes[-1][0].set_xlabel("step")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    except (OSError, ValueError) as e:
        raise CookbookError(f"cannot write {str(out)!r}: {e}") from None
    finally:
        plt.close(fig)
    return out
