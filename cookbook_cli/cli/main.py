"""`cookbook` entry point. Start-up imports only typer, rich and pluggy."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from cookbook_cli import __version__
from cookbook_cli.errors import CookbookError


def _click_handles() -> tuple[type[BaseException], ...]:
    """The exceptions click prints itself (usage errors, exits, aborts), from
    the click typer runs on: its own copy (`typer._click`) in typer 0.20 and
    later, the `click` package before."""
    import importlib

    handled: list[type[BaseException]] = [typer.Exit, typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        handled += [getattr(module, n) for n in ("ClickException", "Exit", "Abort") if hasattr(module, n)]
    return tuple(handled)


class _Group(TyperGroup):
    """The one error boundary (see `cli/boundary.py`): a CookbookError anywhere
    below, or a failure of a known class, is one line `Error: ...` and exit
    status 1 (`Stopped: ...` and 130 for an interrupted run); anything else is
    one line saying it is a bug, or its traceback under --debug / COOKBOOK_DEBUG=1."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        args = [*(ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args), *ctx.args]
        try:
            return super().invoke(ctx)
        except _click_handles():
            raise  # usage errors, --help and exits: click prints them
        except Exception as e:
            from cookbook_cli.cli import boundary

            line = boundary.explain(e, args)
            if line is None and (ctx.params.get("debug") or boundary.debugging()):
                raise
            typer.echo(f"{getattr(e, 'label', 'Error')}: {line or boundary.unexpected(e)}", err=True)
            raise typer.Exit(getattr(e, "exit_code", 1)) from None


app = typer.Typer(
    cls=_Group,
    name="cookbook",
    help="Post-training for language models: SFT, RL, DPO and distillation, on Tinker or a local PyTorch engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich's imports a Markdown parser (see cli/groups.py)
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cookbook {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an unexpected error (also COOKBOOK_DEBUG=1)."),
) -> None:
    pass


def _add_groups() -> None:
    from cookbook_cli.cli import engines_cmd, losses_cmd, models_cmd, plugins_cmd, renderers_cmd

    app.add_typer(plugins_cmd.app, name="plugins")
    app.add_typer(renderers_cmd.app, name="renderers")
    app.add_typer(models_cmd.app, name="models")
    app.add_typer(engines_cmd.app, name="engines")
    app.add_typer(losses_cmd.app, name="losses")
    app.add_typer(__import__("cookbook_cli.cli.loggers_cmd", fromlist=["app"]).app, name="loggers")
    app.add_typer(__import__("cookbook_cli.cli.train_cmd", fromlist=["app"]).app, name="train")
    app.add_typer(__import__("cookbook_cli.cli.runs_cmd", fromlist=["app"]).app, name="runs")
    app.add_typer(__import__("cookbook_cli.cli.datasets_cmd", fromlist=["app"]).app, name="datasets")
    app.add_typer(__import__("cookbook_cli.cli.envs_cmd", fromlist=["app"]).app, name="envs")
    app.add_typer(__import__("cookbook_cli.cli.tools_cmd", fromlist=["app"]).app, name="tools")
    app.command("sample")(__import__("cookbook_cli.cli.sample_cmd", fromlist=["sample"]).sample)
    app.command("export")(__import__("cookbook_cli.cli.export_cmd", fromlist=["export"]).export)
    app.command("chat")(__import__("cookbook_cli.cli.chat_cmd", fromlist=["chat"]).chat)
    app.command("serve")(__import__("cookbook_cli.cli.serve_cmd", fromlist=["serve"]).serve)
    app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        __import__("cookbook_cli.cli.eval_cmd", fromlist=["eval_command"]).eval_command
    )
    app.add_typer(__import__("cookbook_cli.cli.evaluators_cmd", fromlist=["app"]).app, name="evaluators")


def _command_names(commands: list[Any], groups: list[Any]) -> list[str]:
    """The names typer gives registered commands and groups."""
    from typer.main import get_command_name

    names = [c.name or get_command_name(c.callback.__name__) for c in commands]
    return names + [g.name or g.typer_instance.info.name or "" for g in groups]


def _add_plugin_commands() -> None:
    """Each plugin's `register_commands` in turn. One that fails, or that would
    replace a command already there, is reported by distribution and its
    commands are dropped; the others' stay."""
    from cookbook_cli.plugins import manager

    for impl in manager.hook_impls("register_commands"):
        n_commands, n_groups = len(app.registered_commands), len(app.registered_groups)
        ok, _ = manager.call_impl(impl, "register_commands", {"app": app})
        added = _command_names(app.registered_commands[n_commands:], app.registered_groups[n_groups:])
        taken = set(_command_names(app.registered_commands[:n_commands], app.registered_groups[:n_groups]))
        clash = sorted(n for n in added if n in taken)
        if ok and clash:
            manager.record_error(
                manager.PluginLoadError(
                    manager.distribution(impl.plugin_name),
                    impl.plugin_name,
                    f"it adds command(s) {', '.join(clash)}, which already exist",
                    "register_commands",
                )
            )
        if not ok or clash:
            del app.registered_commands[n_commands:]
            del app.registered_groups[n_groups:]


_add_groups()


def main(argv: list[str] | None = None) -> None:
    _add_plugin_commands()
    app(args=argv, prog_name="cookbook")
