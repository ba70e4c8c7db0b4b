"""`cookbook envs ...`: the RL environments that plugins registered."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("RL environments (built-in and from plugins).")


def _options(options: list[dict[str, object]]) -> str:
    return ", ".join(f"env.{o['name']}={o['default']}" for o in options)


@app.command("list")
def list_envs(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered environments, the plugin of each, and their options (set as env.NAME=VALUE)."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.rl.envs import list_envs as rows_of

    rows = rows_of()
    if as_json:
        print_json(rows)
        return
    print_table(
        "Environments",
        ["name", "plugin", "description", "options (defaults)"],
        [[str(r["name"]), str(r["plugin"]), str(r["description"]), _options(r["options"])] for r in rows],
        wrap=("description", "options (defaults)"),
    )
