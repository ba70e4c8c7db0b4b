"""Running evaluators on a model: with result files (`cookbook eval`) or
without (recipes, every `eval_every` steps).

Files, per evaluator, under the results folder (default: `<run>/eval/<checkpoint>/`
for a run, `eval/<model>-<tag>/` for a base model, the tag telling apart models and engines):

    <name>/result.json         what was evaluated (model, options, seed) and the metrics
    <name>/trajectories.jsonl  one record per example: its id, what was sampled, its metrics

An interrupted evaluation resumes by example id: re-running the same command
evaluates only the examples missing from trajectories.jsonl (a line cut short
by a kill is dropped); resuming with other options or another model is
refused, so one result never mixes two settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.evaluation.base import EvalContext, Evaluator, Example
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.sources import ModelSource

RESULT = "result.json"
TRAJECTORIES = "trajectories.jsonl"


@dataclass
class EvalResult:
    name: str
    metrics: dict[str, float]
    examples: int
    evaluated: int  # examples evaluated by this call (the rest were already there)
    folder: Path | None = None
    elapsed: float = 0.0


def evaluator_json(evaluator: Evaluator) -> dict[str, Any]:
    from cookbook_cli.config import config_to_json
    from cookbook_cli.plugins import registry

    return config_to_json(evaluator, {"env": registry.envs})


async def run_examples(
    evaluator: Evaluator,
    examples: list[Example],
    ctx: EvalContext,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    concurrency: int = 8,
) -> list[dict[str, Any]]:
    """Evaluate `examples` concurrently (at most `concurrency` at a time); records
    reach `on_record` in example order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(example: Example) -> dict[str, Any]:
        async with gate:
            record = await evaluator.evaluate(example, ctx)
        record["id"] = example.id
        return record

    tasks = [asyncio.ensure_future(one(e)) for e in examples]
    records = []
    try:
        for task in tasks:
            record = await task
            records.append(record)
            if on_record is not None:
                on_record(record)
    finally:
        for t in tasks:
            t.cancel()
    return records


async def evaluate_with_client(
    evaluators: list[tuple[str, Evaluator]], renderer: Renderer, client: SamplingClient, seed: int = 0
) -> dict[str, float]:
    """Every evaluator on one sampling client, without files: `test/<name>/<metric>` -> value."""
    from cookbook_cli.evaluation.base import EvalContext

    out: dict[str, float] = {}
    for name, evaluator in evaluators:
        ctx = EvalContext(renderer, client, seed)
        records = await run_examples(evaluator, evaluator.examples(ctx), ctx)
        out.update({f"test/{name}/{k}": v for k, v in evaluator.summarize(records).items()})
    return out


# -- with files ---------------------------------------------------------------------------------


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):  # a write cut short: drop the torn line
        with path.open("r+b") as f:
            f.truncate(len(complete))
    records = []
    for lineno, raw in enumerate(complete.split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            raise CookbookError(f"{path}:{lineno} is not valid JSON; remove that line (or the file) and run again") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise CookbookError(f"{path}:{lineno} is not an evaluation record (no id); remove that line (or the file)")
        records.append(record)
    return records


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def default_results_root(source: ModelSource) -> Path:
    if source.run_dir is not None:
        return source.run_dir / "eval" / source.label()
    return Path("eval") / model_results_name(source.engine, source.base_model)


def model_results_name(engine: str, model: str) -> str:
    """The folder of a base model's results under eval/: the model written out
    (its tail, readable) and a tag of the engine and the whole model, so two
    different models never share one (`random:tiny:llama3` and
    `random:tiny:qwen3`; two folders both named `model`)."""
    import hashlib
    import re

    path = Path(model).expanduser()
    whole = str(path.resolve()) if path.exists() else model
    readable = re.sub(r"[^A-Za-z0-9._]+", "-", model).strip("-.")[-48:].strip("-.") or "model"
    tag = hashlib.sha256(f"{engine}\0{whole}".encode()).hexdigest()[:8]
    return f"{readable}-{tag}"


def run_config(source: ModelSource) -> dict[str, Any] | None:
    """The config.json of the run `source` belongs to, if any."""
    from cookbook_cli.run.files import CONFIG, read_json

    if source.run_dir is None or not (source.run_dir / CONFIG).is_file():
        return None
    config = read_json(source.run_dir / CONFIG)
    return config if isinstance(config, dict) else None


def _claim_in_run(source: ModelSource, root: Path) -> None:
    """List eval/ in the run's manifest (so --if-exists overwrite removes stale results),
    unless a running process owns the manifest."""
    from cookbook_cli.run.directory import RunDir
    from cookbook_cli.run.files import LOCK
    from cookbook_cli.run.lock import is_locked

    if source.run_dir is None or is_locked(source.run_dir / LOCK):
        return
    try:
        rel = root.resolve().relative_to(source.run_dir.resolve())
    except ValueError:
        return
    RunDir(source.run_dir).claim(rel.parts[0])


Plan = tuple[str, "Evaluator", "list[Example]", Path, "list[dict[str, Any]]", "dict[str, Any]"]


def prepare(
    evaluators: list[tuple[str, Evaluator]], model: dict[str, Any], root: Path, ctx: EvalContext
) -> list[Plan]:
    """Each evaluator's examples, results folder and records already there,
    checked before any model loads (bad options and mismatched results fail
    fast). `model` is what result.json records of the model evaluated."""
    from cookbook_cli.config import config_differences

    out = []
    seed = ctx.seed
    for name, evaluator in evaluators:
        examples = evaluator.examples(ctx)
        folder = root / name
        settings = {"evaluator": name, "options": evaluator_json(evaluator), "model": model, "seed": seed}
        done: list[dict[str, Any]] = []
        if (folder / RESULT).is_file():
            try:
                old = json.loads((folder / RESULT).read_text(encoding="utf-8"))
            except ValueError:
                raise CookbookError(f"{folder / RESULT} is not valid JSON; remove {folder} to evaluate again") from None
            diffs = config_differences(old.get("settings") or {}, settings)
            if diffs:
                raise CookbookError(
                    f"{folder} holds results made with other settings ({'; '.join(diffs[:3])}); "
                    "use the same settings to resume, or another --out"
                )
            ids = {e.id for e in examples}
            done = [r for r in _read_records(folder / TRAJECTORIES) if r["id"] in ids]
        out.append((name, evaluator, examples, folder, done, settings))
    return out


def evaluate_source(
    evaluators: list[tuple[str, Evaluator]],
    source: ModelSource,
    root: str | Path | None = None,
    seed: int = 0,
    progress: bool | None = None,
    concurrency: int = 8,
) -> list[EvalResult]:
    """Run `evaluators` on `source` (one model load for all of them), writing
    result files under `root` (see the module docstring); resumable."""
    from cookbook_cli.evaluation.base import EvalContext
    from cookbook_cli.sources import open_sampler, renderer_for

    renderer = renderer_for(source)
    results_root = Path(root).expanduser() if root is not None else default_results_root(source)
    plans = prepare(evaluators, source.to_json(), results_root, EvalContext(renderer, None, seed, run_config(source)))  # type: ignore[arg-type]
    pending = [p for p in plans if len(p[4]) < len(p[2])]
    if pending:
        results_root.mkdir(parents=True, exist_ok=True)
        _claim_in_run(source, results_root)
    # Everything already evaluated: no model is loaded.
    with open_sampler(source) if pending else contextlib.nullcontext() as client:
        return run_plans(plans, EvalContext(renderer, client, seed, run_config(source)), progress, concurrency)


def run_plans(plans: list[Plan], ctx: EvalContext, progress: bool | None = None, concurrency: int = 8) -> list[EvalResult]:
    """Evaluate what `prepare` found missing, appending records as they come, and write each result."""
    from cookbook_cli.run.progress import StepProgress

    results: list[EvalResult] = []
    for name, evaluator, examples, folder, done, settings in plans:
        t0 = time.monotonic()
        done_ids = {r["id"] for r in done}
        todo = [e for e in examples if e.id not in done_ids]
        records = list(done)
        if todo:
            folder.mkdir(parents=True, exist_ok=True)
            _write_json(folder / RESULT, {"settings": settings, "status": "running", "examples": len(examples)})
            with StepProgress(len(examples), f"eval {name}", start=len(done), plain=None if progress is None else not progress, unit="example", every=5.0) as bar:

                def keep(record: dict[str, Any]) -> None:
                    _append(folder / TRAJECTORIES, record)
                    records.append(record)
                    bar.update(len(records))

                asyncio.run(run_examples(evaluator, todo, ctx, keep, concurrency))
        order = {e.id: i for i, e in enumerate(examples)}
        records.sort(key=lambda r: order[r["id"]])
        metrics = evaluator.summarize(records)
        _write_json(folder / RESULT, {
            "settings": settings, "status": "complete", "examples": len(examples), "metrics": metrics,
            "main_metric": evaluator.main_metric(), "time": time.time(),
        })
        results.append(EvalResult(name, metrics, len(examples), len(todo), folder, time.monotonic() - t0))
    return results


@dataclass
class CheckpointRow:
    checkpoint: str
    step: int
    results: list[EvalResult]


def evaluate_checkpoints(
    evaluators: list[tuple[str, Evaluator]],
    run_dir: str | Path,
    renderer: str | None = None,
    seed: int = 0,
    progress: bool | None = None,
    on_checkpoint: Callable[[CheckpointRow], None] | None = None,
) -> list[CheckpointRow]:
    """Every recorded checkpoint of a run, each into `<run>/eval/<checkpoint>/`."""
    from cookbook_cli.run.reader import RunReader
    from cookbook_cli.sources import resolve_source

    run_path = Path(run_dir).expanduser()
    first = resolve_source(run=run_path, renderer=renderer)  # checks the run
    records = RunReader(run_path).records()
    rows = []
    for record in records:
        source = resolve_source(run=run_path, checkpoint=str(record["name"]), renderer=renderer or first.renderer)
        row = CheckpointRow(str(record["name"]), int(record["step"]), evaluate_source(evaluators, source, seed=seed, progress=progress))
        rows.append(row)
        if on_checkpoint is not None:
            on_checkpoint(row)
    return rows


def plot_checkpoints(rows: list[CheckpointRow], out: str | Path, title: str = "") -> Path:
    """Each evaluator's main metric against the checkpoint's step (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CookbookError("--plot needs matplotlib: pip install 'cookbook-cli[plot]'") from None
    out = Path(out).expanduser()
    if not out.parent.is_dir():
        raise CookbookError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} does not exist")
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r.name for r in rows[0].results] if rows else []
    for i, name in enumerate(names):
        main = _main_metric(rows, i)
        ax.plot([r.step for r in rows], [r.results[i].metrics.get(main, float("nan")) for r in rows], marker="o", label=f"{name} {main}")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


def _main_metric(rows: list[CheckpointRow], i: int) -> str:
    folder = rows[0].results[i].folder
    if folder is not None and (folder / RESULT).is_file():
        main = json.loads((folder / RESULT).read_text(encoding="utf-8")).get("main_metric")
        if isinstance(main, str):
            return main
    return next(iter(rows[0].results[i].metrics), "")
