"""`cookbook eval`: evaluators (plugins) on a model, a checkpoint, or every checkpoint of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cookbook_cli.cli.model_options import CHECKPOINT, ENGINE, MODEL, RENDERER, RUN


def _evaluator_words(words: list[str], options: list[str]) -> list[tuple[str, list[str]]]:
    """`NAME key=value ... NAME2 key=value ...` -> [(NAME, words), ...]."""
    from cookbook_cli.errors import CookbookError

    groups: list[tuple[str, list[str]]] = []
    for w in words:
        if w.startswith("-"):
            name = w.split("=", 1)[0]
            where = "comes after the evaluator words: put options first" if name in options else "is not an option of cookbook eval (see --help)"
            raise CookbookError(f"{name} {where}")
        if "=" in w:
            if not groups:
                raise CookbookError(f"{w!r} comes before any evaluator name: write `cookbook eval NAME {w}` (cookbook evaluators list)")
            groups[-1][1].append(w)
        else:
            groups.append((w, []))
    return groups


def eval_command(
    ctx: typer.Context,
    model: str = MODEL,
    run: str = RUN,
    checkpoint: str = CHECKPOINT,
    engine: str = ENGINE,
    renderer: str = RENDERER,
    all_checkpoints: bool = typer.Option(False, "--all-checkpoints", help="Evaluate every checkpoint the run recorded; print one table."),
    out: Path = typer.Option(None, "--out", "-o", help="Results folder (default <run>/eval/<checkpoint>/, or eval/<model>-<tag>/)."),
    plot: Path = typer.Option(None, "--plot", help="With --all-checkpoints: also plot each evaluator's main metric against the step (PNG)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed: the same command samples the same replies."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    endpoint: str = typer.Option(None, "--endpoint", help="Evaluate an OpenAI-compatible API instead (its URL, e.g. http://127.0.0.1:8000/v1): graded benchmarks only."),
    endpoint_model: str = typer.Option(None, "--endpoint-model", help="With --endpoint: the model name to send (default: the only one it lists)."),
    api_key: str = typer.Option(None, "--api-key", envvar="COOKBOOK_ENDPOINT_API_KEY", help="With --endpoint: its API key (also from COOKBOOK_ENDPOINT_API_KEY)."),
) -> None:
    """Run evaluators on a model or a run's checkpoints.

    Name evaluators after the options, each followed by its options as
    key=value (`cookbook evaluators list`), e.g.
    `cookbook eval --run runs/x arithmetic num_samples=4 pass_k=1,4 nll path=test.jsonl`.
    With --run and no names, the evaluators in the run's config. Writes
    <name>/result.json and <name>/trajectories.jsonl; re-running resumes."""
    from cookbook_cli.cli.model_options import model_source
    from cookbook_cli.cli.train_cmd import option_names
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.evaluation.base import build_evaluator, make_evaluators

    groups = _evaluator_words(list(ctx.args), option_names(ctx))
    if groups:
        evaluators = [build_evaluator(name, words) for name, words in groups]
        names = [n for n, _ in evaluators]
        if len(set(names)) != len(names):
            raise CookbookError("an evaluator is named twice; give one a label=NAME")
    else:
        evaluators = make_evaluators(_run_evaluators(run or _run_of(checkpoint)))
    if endpoint is not None:
        _endpoint(evaluators, endpoint, endpoint_model, api_key, out, seed, as_json, given=[model, run, checkpoint, engine, renderer, all_checkpoints or None])
        return
    if endpoint_model is not None or api_key is not None:
        raise CookbookError("--endpoint-model and --api-key go with --endpoint URL")
    if plot is not None and not all_checkpoints:
        raise CookbookError("--plot draws a metric across checkpoints: add --all-checkpoints")
    if all_checkpoints:
        if run is None:
            raise CookbookError("--all-checkpoints needs --run DIR")
        if checkpoint is not None or out is not None:
            raise CookbookError("--all-checkpoints evaluates every checkpoint into <run>/eval/: drop --checkpoint and --out")
        _all_checkpoints(evaluators, run, renderer, seed, plot, as_json)
        return
    from cookbook_cli.evaluation.runner import evaluate_source

    source = model_source(model, run, checkpoint, engine, renderer)
    _print_results(source.describe(), source.to_json(), evaluate_source(evaluators, source, out, seed), as_json)


def _endpoint(evaluators: list[Any], url: str, model: str | None, api_key: str | None, out: Path | None, seed: int, as_json: bool, given: list[Any]) -> None:
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.evaluation.endpoint import Endpoint, check_message_level, evaluate_endpoint

    if any(g is not None for g in given):
        raise CookbookError("--endpoint evaluates the model behind the URL: drop --model, --run, --checkpoint, --engine, --renderer and --all-checkpoints")
    if not url.startswith(("http://", "https://")):
        raise CookbookError(f"--endpoint must be an http:// or https:// URL, got {url!r}")
    check_message_level(evaluators)  # before any request
    ep = Endpoint(url, api_key, model).resolve_model()
    _print_results(f"{ep.model} at {ep.base}", ep.to_json(), evaluate_endpoint(evaluators, ep, out, seed), as_json)


def _print_results(header: str, model: dict[str, Any], results: list[Any], as_json: bool) -> None:
    if as_json:
        from cookbook_cli.cli.output import print_json

        print_json({"model": model, "results": {r.name: {"metrics": r.metrics, "folder": str(r.folder)} for r in results}})
        return
    typer.echo(header)
    for r in results:
        resumed = f", {r.examples - r.evaluated} already done" if r.evaluated < r.examples else ""
        typer.echo(f"  {r.name} ({r.examples} examples{resumed}): " + "  ".join(f"{k}={_fmt(v)}" for k, v in r.metrics.items()))
        typer.echo(f"    {r.folder}")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _run_of(checkpoint: str | None) -> str | None:
    from pathlib import Path

    from cookbook_cli.run.reader import run_containing

    if checkpoint is None or not Path(checkpoint).exists():
        return None
    found = run_containing(Path(checkpoint).resolve())
    return str(found) if found else None


def _run_evaluators(run: str | None) -> list[str]:
    """The evaluator specs in a run's config (`evaluators=[...]`)."""
    from cookbook_cli.errors import CookbookError

    if run is None:
        raise CookbookError("name an evaluator to run, e.g. `cookbook eval --model M arithmetic` (cookbook evaluators list)")
    from cookbook_cli.sources import resolve_source

    specs = resolve_source(run=run).config.get("evaluators") or []
    if not specs:
        raise CookbookError(f"run {run!r} has no evaluators in its config; name one, e.g. `cookbook eval --run {run} arithmetic` (cookbook evaluators list)")
    return [str(s) for s in specs]


def _all_checkpoints(evaluators: list[Any], run: str, renderer: str | None, seed: int, plot: Path | None, as_json: bool) -> None:
    from cookbook_cli.evaluation.runner import evaluate_checkpoints, plot_checkpoints

    rows = evaluate_checkpoints(evaluators, run, renderer, seed, on_checkpoint=None if as_json else lambda r: typer.echo(
        f"  {r.checkpoint} (step {r.step}): " + "  ".join(f"{res.name}/{k}={_fmt(v)}" for res in r.results for k, v in res.metrics.items())
    ))
    if as_json:
        from cookbook_cli.cli.output import print_json

        print_json([{"checkpoint": r.checkpoint, "step": r.step, "results": {x.name: x.metrics for x in r.results}} for r in rows])
    else:
        from cookbook_cli.cli.output import print_table

        keys = [(i, x.name, k) for i, x in enumerate(rows[0].results) for k in x.metrics] if rows else []
        print_table(
            f"{run}: {len(rows)} checkpoints",
            ["checkpoint", "step", *[f"{name}/{k}" for _, name, k in keys]],
            [[r.checkpoint, str(r.step), *[_fmt(r.results[i].metrics.get(k, "")) for i, _, k in keys]] for r in rows],
        )
    if plot is not None and rows:
        typer.echo(f"Wrote {plot_checkpoints(rows, plot, title=run)}")
