"""The runs under a folder, one row each, for `cookbook runs list`.

A row says which recipe trained which model, how far it got (steps done of
the total), its last loss or reward, its newest checkpoint and its state:

- `running`: a live process holds the run's lock;
- `finished`: the newest checkpoint is the final one of the run's last step;
- `resumable`: a checkpoint is recorded, the run did not reach its end;
- `no checkpoint`: it stopped before saving anything (it can only start over).

Rows are read from the files alone (no engine, nothing heavy), and a damaged
run is shown with what is wrong with it instead of failing the whole list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.directory import RunDir, is_run
from cookbook_cli.run.files import CONFIG, LOCK, read_json
from cookbook_cli.run.lock import is_locked

RUNNING, FINISHED, RESUMABLE, NO_CHECKPOINT, DAMAGED = "running", "finished", "resumable", "no checkpoint", "damaged"
#: How deep under the folder runs are looked for (runs/<group>/<run> is found).
MAX_DEPTH = 3


@dataclass
class RunRow:
    path: str
    recipe: str | None
    model: str | None
    steps_done: int
    total_steps: int | None
    last_loss: float | None
    last_reward: float | None
    state: str
    checkpoint: str | None  # the newest checkpoint's name
    checkpoint_step: int | None
    problem: str | None = None  # why the run's files could not be read
    #: The recipe's main metrics at their last logged value (see `main_metrics`), in its order.
    main: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find_runs(root: Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Run directories under `root` (or `root` itself), sorted by path; a run's own folders are not searched."""
    if is_run(root):
        return [root]
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            if is_run(child):
                found.append(child)
            elif depth < max_depth:
                walk(child, depth + 1)

    walk(root, 1)
    return found


#: For a run whose recipe declares no main metrics (or is no longer installed).
_FALLBACK = (("loss", "loss"), ("env/reward/mean", "reward"))


def main_metrics(recipe: str | None) -> tuple[tuple[str, str], ...]:
    """(key, label) of the metrics that say how a run of `recipe` is going: what
    the recipe declared with `register(..., main_metrics=[...])`."""
    from cookbook_cli.plugins import registry

    recipes = registry.ALL.get("register_recipes")
    entry = recipes.entries().get(recipe or "") if recipes is not None else None
    declared = entry.extra.get("main_metrics") if entry is not None else None
    if declared:
        return tuple((k, k) if isinstance(k, str) else tuple(k) for k in declared)  # type: ignore[misc]
    return _FALLBACK


def _recipe_of(directory: RunDir, config: dict[str, Any]) -> str | None:
    recipe = directory.info().get("recipe")
    if isinstance(recipe, str):
        return recipe
    # Runs written before the manifest named the recipe: the RL config is the one with an env.
    return "rl" if "env" in config else None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def run_row(path: Path) -> RunRow:
    """The row of one run directory."""
    directory = RunDir(path)
    locked = is_locked(path / LOCK)
    try:
        config = read_json(path / CONFIG) if (path / CONFIG).is_file() else {}
        config = config if isinstance(config, dict) else {}
        info = directory.info()
        metrics = directory.metrics()
        checkpoints = directory.checkpoints()
    except CookbookError as e:
        return RunRow(str(path), None, None, 0, None, None, None, RUNNING if locked else DAMAGED, None, None, str(e))
    steps = [r for r in metrics if not r.get("final") and isinstance(r.get("step"), int)]
    steps_done = max((r["step"] for r in steps), default=-1) + 1
    total = info.get("total_steps") if isinstance(info.get("total_steps"), int) else None
    if total is None and isinstance(config.get("max_steps"), int):
        total = config["max_steps"]
    last_loss = next((_number(r["loss"]) for r in reversed(steps) if "loss" in r), None)
    last_reward = next((_number(r["env/reward/mean"]) for r in reversed(steps) if "env/reward/mean" in r), None)
    recipe = _recipe_of(directory, config)
    main = {}
    for key, label in main_metrics(recipe):
        value = next((_number(r[key]) for r in reversed(steps) if key in r), None)
        if value is not None:
            main[label] = value
    newest = checkpoints[-1] if checkpoints else None
    if locked:
        state = RUNNING
    elif newest is None:
        state = NO_CHECKPOINT
    elif newest.get("final") and (total is None or newest.get("step") == total):
        state = FINISHED
    else:
        state = RESUMABLE
    return RunRow(
        str(path),
        recipe,
        config.get("model") if isinstance(config.get("model"), str) else None,
        steps_done,
        total,
        last_loss,
        last_reward,
        state,
        newest.get("name") if newest else None,
        newest.get("step") if newest else None,
        main=main,
    )


def list_runs(root: str | Path = "runs") -> list[RunRow]:
    """Every run under `root` (default `runs/`), oldest path first."""
    folder = Path(root).expanduser()
    if not folder.exists():
        raise CookbookError(f"folder {str(folder)!r} does not exist; give the folder that holds your runs (default runs/)")
    if not folder.is_dir():
        raise CookbookError(f"{str(folder)!r} is a file; give the folder that holds your runs")
    return [run_row(p) for p in find_runs(folder)]
