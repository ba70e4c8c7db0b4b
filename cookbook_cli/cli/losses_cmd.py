"""`cookbook losses ...`: built-in (engine-side) and plugin (custom) loss functions."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Loss functions: engine built-ins and custom losses from plugins.")


@app.command("list")
def list_losses(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List losses. `built-in` ones run inside the engine (forward_backward);
    `custom` ones run through forward_backward_custom on any engine."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.plugins import registry

    rows = []
    for e in registry.loss_functions.entries().values():
        builtin = bool(e.extra.get("builtin"))
        row = {"name": e.name, "kind": "built-in" if builtin else "custom", "plugin": e.plugin, "description": e.description}
        if builtin:
            row["inputs"] = list(getattr(e.obj, "input_keys", ()))
            row["config"] = dict(getattr(e.obj, "config_defaults", {}))
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    print_table(
        "Loss functions",
        ["name", "kind", "plugin", "config", "description"],
        [
            [r["name"], r["kind"], r["plugin"], ", ".join(f"{k}={v}" for k, v in r.get("config", {}).items()), r["description"]]
            for r in rows
        ],
        wrap=("config", "description"),
    )
