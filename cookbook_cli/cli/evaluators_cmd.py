"""`cookbook evaluators ...`: the evaluators that plugins registered."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Evaluators for `cookbook eval` and recipes' evaluators=[...] (built-in and from plugins).")


@app.command("list")
def list_evaluators(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered evaluators, the plugin of each, and their options (key=value after the name)."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.evaluation.base import list_evaluators as rows_of

    rows = rows_of()
    if as_json:
        print_json(rows)
        return
    print_table(
        "Evaluators",
        ["name", "plugin", "description", "options (defaults)"],
        [[str(r["name"]), str(r["plugin"]), str(r["description"]), ", ".join(f"{o['name']}={o['default']}" for o in r["options"])] for r in rows],
    )
