"""`cookbook plugins ...`: what is installed and what each plugin registered."""

from __future__ import annotations

from pathlib import Path

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Inspect installed plugins, or start a new one.")


def plugins_report() -> list[dict]:
    """Each loaded plugin with its version and, per hook, the names it
    registered; the built-in one also lists its modules."""
    from cookbook_cli.plugins import manager, registry

    infos = manager.plugin_infos()
    report = {
        name: {"name": name, "distribution": i.distribution, "version": i.version, "builtin": i.builtin, "hooks": {}}
        | ({"modules": list(i.modules)} if i.modules else {})
        for name, i in infos.items()
    }
    for hook, reg in registry.ALL.items():
        for entry in reg.gathered():
            if entry.plugin in report:
                report[entry.plugin]["hooks"].setdefault(hook, []).append(entry.name)
    for impl in manager.hook_impls("register_commands"):
        plugin = manager.owner(impl.plugin_name)
        if plugin in report:
            report[plugin]["hooks"].setdefault("register_commands", [])
    return list(report.values())


@app.command("list")
def list_plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List plugins with their version and what they registered. Exit status 1
    when two plugins register one name (both are listed)."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.plugins import manager, registry

    rows = plugins_report()
    errors = manager.load_errors()
    conflicts = [c for reg in registry.ALL.values() for c in reg.conflicts()]
    if as_json:
        print_json(
            {
                "plugins": rows,
                "errors": [e.__dict__ for e in errors],
                "warnings": manager.load_warnings(),
                "conflicts": conflicts,
            }
        )
        raise typer.Exit(1 if conflicts else 0)
    print_table(
        "Plugins",
        ["plugin", "version", "registered"],
        [
            [
                r["name"] + (" (built-in)" if r["builtin"] else ""),
                r["version"],
                "\n".join(
                    [f"{h}: {', '.join(n) if n else '(commands)'}" for h, n in r["hooks"].items()]
                    + ([f"modules: {', '.join(r['modules'])}"] if r.get("modules") else [])
                )
                or "-",
            ]
            for r in rows
        ],
        wrap=("registered",),
    )
    for line in conflicts:  # listed above, but every command that uses the registry fails
        typer.echo(f"Error: {line}", err=True)
    if conflicts:
        raise typer.Exit(1)


@app.command("new")
def new_plugin(
    kind: str = typer.Argument(..., help="What the plugin adds: renderer, env, dataset, loss, recipe or tool."),
    name: str = typer.Argument(..., help="The name it registers, e.g. acme_chatml (lowercase; parts joined by _ - or .)."),
    directory: Path = typer.Option(None, "--dir", help="Where to write the package (default: ./cookbook-NAME). Must not exist, or be empty."),
) -> None:
    """Write a new, installable plugin package: pyproject with the `cookbook`
    entry point, the hook implementation, a README and passing tests."""
    from cookbook_cli.scaffold import KIND_INFO, new_plugin as write_plugin, plugin_names

    names = plugin_names(kind, name)
    path = write_plugin(kind, name, directory)
    _, list_command = KIND_INFO[kind]
    typer.echo(f"Created {path}: {kind} {names.name!r} in distribution {names.dist} (module {names.module}).")
    typer.echo("Next:")
    typer.echo(f"  pip install -e {path}")
    typer.echo(f"  pytest {path}")
    typer.echo(f"  {list_command}")
