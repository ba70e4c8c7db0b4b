"""`cookbook losses ...`: built-in (engine-side) and plugin (custom) loss functions."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Loss functions: engine built-ins and custom losses from plugins.")


@app.command("list")
def list_losses(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List losses. `built-in` ones run inside the engine (forward_backward);
    `custom` ones run through forward_backward_custom on any engine;
    `preference` ones are `train dpo --loss-type` choices and
    `preference-unpaired` ones `train kto --loss-type` choices (both run
    through forward_backward_custom)."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.plugins import registry

    rows = []
    for e in registry.loss_functions.entries().values():
        builtin = bool(e.extra.get("builtin"))
        kind = "built-in" if builtin else str(e.extra.get("kind") or "custom")
        row = {"name": e.name, "kind": kind, "plugin": e.plugin, "description": e.description}
        if builtin:
            row["inputs"] = list(getattr(e.obj, "input_keys", ()))
        if hasattr(e.obj, "config_defaults"):
            row["config"] = dict(e.obj.config_defaults)
        if hasattr(e.obj, "needs_reference"):
            row["reference"] = bool(e.obj.needs_reference)
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
