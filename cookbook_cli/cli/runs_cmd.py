"""`cookbook runs ...`: look at a run's log directory."""

from __future__ import annotations

from pathlib import Path

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Inspect training runs: config, metrics, checkpoints and curves.")


@app.command("show")
def show(
    log_dir: Path = typer.Argument(..., help="A run's log directory."),
    plot: Path = typer.Option(None, "--plot", help="Also write the curves to this image file (PNG; needs matplotlib)."),
    as_json: bool = typer.Option(False, "--json", help="Print config, last metrics and checkpoints as JSON."),
) -> None:
    """The run's config summary, last metrics, checkpoints and loss curve."""
    from cookbook_cli.cli.output import print_json
    from cookbook_cli.run.show import EVAL_KEYS, ascii_chart, load_run, plot_png, summary_items

    run = load_run(log_dir)
    if as_json:
        print_json({
            "log_dir": str(run.path),
            "config": run.config,
            "steps": run.steps_logged(),
            "last_metrics": run.last_row(),
            "last_eval": next((r for k in EVAL_KEYS if (r := run.last_row(k))), None),
            "checkpoints": run.checkpoints,
        })
    else:
        _show_text(run, summary_items, ascii_chart)
    if plot is not None:
        out = plot_png(run, plot)
        typer.echo(f"Wrote {out}")


@app.command("list")
def list_cmd(
    folder: Path = typer.Argument(Path("runs"), help="Folder holding runs (searched 3 levels deep). Default: runs/."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per run, as a list."),
) -> None:
    """Runs under a folder: recipe, model, steps done/total, the recipe's main metrics
    (SL loss and test NLL, RL reward, DPO accuracy and margin, distillation teacher KL),
    state (running, finished, resumable, no checkpoint) and newest checkpoint."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.run.listing import list_runs

    rows = list_runs(folder)
    if as_json:
        print_json([r.to_json() for r in rows])
        return
    if not rows:
        typer.echo(f"No runs under {folder}")
        return

    def last(r) -> str:  # type: ignore[no-untyped-def]
        return ", ".join(f"{label} {value:.4g}" for label, value in r.main.items()) or "-"

    print_table(
        f"Runs under {folder}",
        ["run", "recipe", "model", "steps", "last", "state", "newest checkpoint"],
        [
            [
                r.path,
                r.recipe or "?",
                r.model or "?",
                f"{r.steps_done}/{r.total_steps if r.total_steps is not None else '?'}",
                last(r),
                r.state + (f" ({r.problem})" if r.problem else ""),
                f"{r.checkpoint} (step {r.checkpoint_step})" if r.checkpoint else "-",
            ]
            for r in rows
        ],
    )


def _show_text(run, summary_items, ascii_chart) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    console = Console(highlight=False)
    console.rule(f"run {run.path}")
    for key, value in summary_items(run.config):
        console.print(f"  {key:<14} {value}", markup=False, soft_wrap=True)
    from cookbook_cli.run.show import CURVES

    curves = {label: run.series(key) for key, label in CURVES.items() if run.series(key)}
    last = run.last_row()
    console.print()
    if last is None:
        console.print("  no steps logged yet")
    else:
        total = run.config.get("max_steps")
        console.print(f"  steps logged   {run.steps_logged()}" + (f" (max_steps {total})" if total else ""))
        shown = {k: v for k, v in last.items() if k not in ("epoch", "batch")}
        console.print("  last step      " + "  ".join(f"{k}={_fmt(v)}" for k, v in shown.items()), markup=False, soft_wrap=True)
        for label, pts in curves.items():
            first, final = pts[0][1], pts[-1][1]
            pct = f" ({(final - first) / abs(first) * 100:+.0f}%)" if first else ""
            console.print(f"  {label:<14} {first:.4g} -> {final:.4g}{pct} (step {pts[0][0]} -> {pts[-1][0]})")
    if run.checkpoints:
        ck = run.checkpoints[-1]
        where = ck.get("sampler_path") or ck.get("state_path")
        console.print(f"  checkpoints    {len(run.checkpoints)}, last at step {ck.get('step')}{' (final)' if ck.get('final') else ''}: {where}", markup=False, soft_wrap=True)
    if curves:
        console.print()
        for line in ascii_chart(curves):
            console.print(line, markup=False)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@app.command("resume", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def resume(
    ctx: typer.Context,
    log_dir: Path = typer.Argument(..., help="A run's log directory."),
) -> None:
    """Continue a run with every setting it stored in config.json. Options and
    config words after DIR change only what the recipe lets a resumed run change
    (e.g. --max-steps, --epochs, --save-every, --eval-every, loggers)."""
    from cookbook_cli.cli.train_cmd import recipe_command
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.run.directory import RunDir, is_run

    if not is_run(log_dir):
        raise CookbookError(f"{str(log_dir)!r} holds no cookbook run (cookbook runs list shows the runs under a folder)")
    recipe = RunDir(log_dir).info().get("recipe")
    if not isinstance(recipe, str):
        raise CookbookError(f"{str(log_dir)!r} does not say which recipe made it (its cookbook-run.json has no recipe)")
    command = recipe_command(recipe)
    args = ["--log-dir", str(log_dir), "--if-exists", "resume", *ctx.args]
    with command.make_context(f"cookbook train {recipe}", args, parent=ctx) as sub:
        command.invoke(sub)
