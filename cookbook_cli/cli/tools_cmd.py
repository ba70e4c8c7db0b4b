"""`cookbook tools ...`: the tools that plugins registered."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Tools an agent may call in tool-use environments (built-in and from plugins).")


@app.command("list")
def list_tools(as_json: bool = typer.Option(False, "--json", help="Print JSON (with each tool's full argument schema).")) -> None:
    """List registered tools: the plugin of each, its description, its arguments (? marks optional) and time limit."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.tools.lookup import list_tools as rows_of

    rows = rows_of()
    if as_json:
        print_json(rows)
        return
    print_table(
        "Tools",
        ["name", "plugin", "description", "arguments", "time limit"],
        [
            [str(r["name"]), str(r["plugin"]), str(r["description"]), str(r["arguments"]) or "-",
             "none" if r["timeout_s"] is None else f"{r['timeout_s']:g} s"]
            for r in rows
        ],
        wrap=("description", "arguments"),
    )
