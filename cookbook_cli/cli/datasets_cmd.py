"""`cookbook datasets ...`: the registered dataset builders."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Dataset builders (conversation files, Hugging Face datasets, plugins).")


@app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered dataset builders with the plugin that registered each."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.plugins import registry

    rows = [
        {"name": e.name, "kind": str(e.extra.get("kind", "")), "plugin": e.plugin, "description": e.description}
        for e in registry.dataset_builders.entries().values()
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Datasets",
        ["name", "kind", "plugin", "description"],
        [[r["name"], r["kind"], r["plugin"], r["description"]] for r in rows],
    )


@app.command("info")
def info(name: str = typer.Argument(..., help="Dataset builder name.")) -> None:
    """A builder's fields, settable as dataset.<field>=value on `cookbook train sl`."""
    import chz

    from cookbook_cli.plugins import registry
    from cookbook_cli.config import config_fields

    entry = registry.dataset_builders.get(name)
    typer.echo(f"{name} (plugin {entry.plugin}): {entry.description}")
    if isinstance(entry.obj, type) and chz.is_chz(entry.obj):
        for key, tp, default, doc in config_fields(entry.obj):
            typer.echo(f"  dataset.{key} : {tp} = {default}" + (f"  -- {doc}" if doc else ""))
