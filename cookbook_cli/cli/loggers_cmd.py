"""`cookbook loggers ...`: experiment trackers a run can log to with --log-to."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Experiment trackers (wandb, tensorboard, mlflow, plugins) a run logs to beside metrics.jsonl.")


@app.command("list")
def list_loggers(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List loggers: whether each one's package is installed here, and the
    logger.<name>.<field>=value options it takes."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.loggers.fanout import install_hint, missing_modules
    from cookbook_cli.plugins import registry

    rows = []
    for e in registry.loggers.entries().values():
        missing = missing_modules(e.extra)
        rows.append(
            {
                "name": e.name,
                "installed": not missing,
                "status": f"needs {', '.join(missing)} ({install_hint(e.extra)})" if missing else "ready",
                "plugin": e.plugin,
                "fields": dict(e.extra.get("fields") or {}),
                "description": e.description,
            }
        )
    if as_json:
        print_json(rows)
        return
    print_table(
        "Loggers",
        ["name", "status", "options", "plugin", "description"],
        [[r["name"], r["status"], ", ".join(r["fields"]), r["plugin"], r["description"]] for r in rows],
    )
