"""`cookbook train NAME`: one command per registered recipe (`register_recipes`),
its options generated from the recipe's config fields (names, types, help,
defaults), as TRL's HfArgumentParser builds a parser from a dataclass; the
short spellings users know (`--lr`, `-m`, `-o`, ...) are aliases of fields.
Any config field can also be given as a trailing `key=value` word."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

#: Short spellings of fields every recipe may have.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("--lr",),
    "renderer": ("-r",),
    "model": ("-m",),
    "engine": ("-e",),
    "log_dir": ("-o",),
    "dataset": ("-d",),
    "batch_size": ("-b",),
}

_RUN_PARAMS = ("if_exists", "log_to", "dry_run")


class _TrainGroup(TyperGroup):
    """Commands made on demand from the recipe registry (so `cookbook --help`
    loads no plugin); `cookbook train --help` lists each recipe with its plugin."""

    def list_commands(self, ctx: Any) -> list[str]:
        from cookbook_cli.plugins import registry

        return [*registry.recipes.names(), *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from cookbook_cli.plugins import registry

        if cmd_name in registry.recipes:
            return recipe_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        from cookbook_cli.plugins import registry

        rows = [(name, f"{e.description} [{e.plugin}]") for name, e in registry.recipes.entries().items()]
        if rows:
            with formatter.section("Recipes (plugin in brackets)"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=_TrainGroup,
    help="Train models with a registered recipe: supervised fine-tuning (sl), reinforcement learning (rl), "
    "preference learning (dpo), distillation (distill), and any a plugin adds.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class _RecipeCommand(TyperCommand):
    """Runs the recipe (`train_recipe`) and lists its config words after the
    options in --help, as a two-column table (keys never wrap, the rest wraps
    under itself)."""

    def __init__(self, *args: Any, config_class: type, keys: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config_class = config_class
        self.keys = keys

    def invoke(self, ctx: Any) -> None:
        assert self.name is not None
        train_recipe(self.name, ctx, dict(ctx.params), self.keys)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        from cookbook_cli.config import config_fields

        rows = config_fields(self.config_class)
        with formatter.section("Config words (key=value after the options; nested fields as a.b=value)"):
            formatter.write_dl(
                [(key, f"{tp} = {default}" + (f"  -- {doc}" if doc else "")) for key, tp, default, doc in rows],
                col_max=max(len(key) for key, *_ in rows),
            )


def _field_param(name: str, f: Any, aliases: tuple[str, ...]) -> TyperOption | None:
    """A field's option, or None for fields only config words set (dicts, lists, nested configs)."""
    import typing

    import chz
    from chz.util import MISSING

    from cookbook_cli.config import RegistryFactory

    tp = f.final_type
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        tp = args[0]
    click_type: Any = {int: int, float: float, str: str, bool: None}.get(tp, "skip") if isinstance(tp, type) else "skip"
    if isinstance(getattr(f, "_meta_factory", None), RegistryFactory):
        click_type = str
    elif click_type == "skip" or (isinstance(tp, type) and chz.is_chz(tp)):
        return None
    flag = "--" + name.replace("_", "-")
    default = f._default if f._default is not MISSING else None
    doc = (f._doc or "").rstrip(".")
    shown = f" (default {default})" if default not in (None, "") and not isinstance(default, bool) else ""
    choices = (f._metadata or {}).get("choices")
    shown += f"; one of {', '.join(choices)}" if choices else ""
    help_text = (doc[:1].upper() + doc[1:] + shown + ".") if doc else shown.strip()
    decls = [flag, *aliases, name]
    if click_type is None:  # a bool: --x / --no-x
        return TyperOption(param_decls=[f"{flag}/--no-{flag[2:]}", name], default=None, is_flag=True, type=bool, help=help_text)
    return TyperOption(param_decls=decls, type=click_type, default=None, help=help_text)


def recipe_command(name: str) -> TyperCommand:
    """`cookbook train NAME`, generated from the recipe's config class."""
    import chz

    from cookbook_cli.plugins import registry

    entry = registry.recipes.get(name)
    recipe = entry.obj
    params: list[Any] = []
    keys: dict[str, str] = {}  # param name -> config key
    for field_name, f in chz.chz_fields(recipe.config).items():
        aliases = (*FIELD_ALIASES.get(field_name, ()), *recipe.aliases.get(field_name, ()))
        param = _field_param(field_name, f, aliases)
        if param is not None and param.name is not None:
            params.append(param)
            keys[param.name] = field_name
    for i, option in enumerate(recipe.options):
        pname = f"_option_{i}"
        params.append(TyperOption(param_decls=[*option.flags, pname], type=str, default=None, help=option.help))
        keys[pname] = pname
    params += [
        TyperOption(param_decls=["--if-exists", "if_exists"], type=str, default=None,
                     help="When --log-dir holds a run: resume (its stored settings), overwrite or fail (default ask on a terminal, else fail)."),
        TyperOption(param_decls=["--log-to", "log_to"], type=str, default=None,
                     help="Experiment trackers beside metrics.jsonl, e.g. wandb,tensorboard (`cookbook loggers list`); options as logger.<name>.<field>=value."),
        TyperOption(param_decls=["--dry-run", "dry_run"], is_flag=True, default=False, help="Print the resolved config and exit."),
    ]

    help_text = (
        f"{entry.description}\n\nOptions first, then any config field as key=value (nested: a.b=value), "
        f"e.g. `cookbook train {name} lr_schedule=cosine adam.beta2=0.99`. [plugin: {entry.plugin}]"
    )
    return _RecipeCommand(
        name, params=params, help=help_text, short_help=entry.description,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, config_class=recipe.config, keys=keys, rich_markup_mode=None,
    )


def trackers(log_to: str | None, words: list[str]) -> tuple[list[str], dict[str, dict[str, str]], list[str]]:
    """--log-to names, the logger.<name>.<field>=value words, and the remaining config words."""
    from cookbook_cli.loggers.options import parse_log_to, split_logger_args, validate_logger_names

    rest, options = split_logger_args(words)
    names = parse_log_to(log_to)
    validate_logger_names(names, options)
    return names, options, rest


def option_names(ctx: Any) -> list[str]:
    """The command's option spellings, to tell a misplaced option from an unknown one."""
    return [o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]


def _given_flag(ctx: Any, pname: str) -> str:
    param = next(p for p in ctx.command.params if p.name == pname)
    return max(param.opts, key=len)


def option_values(recipe: Any, ctx: Any, values: Mapping[str, Any], keys: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The options given, as config values (key -> value) and the flag that set each key."""
    import chz

    from cookbook_cli.errors import CookbookError

    out: dict[str, Any] = {}
    flags: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for pname, value in values.items():
        if value is None or pname in _RUN_PARAMS:
            continue
        if pname.startswith("_option_"):
            option = recipe.options[int(pname.rsplit("_", 1)[1])]
            if option.group:
                groups.setdefault(option.group, []).append(option.flags[0])
            key = option.key
            if option.file_builder:
                out[f"{key}.path"] = value
                value = chz.Castable(option.file_builder)
        else:
            key = keys[pname]
        out[key] = value
        flags[key] = _given_flag(ctx, pname)
    for group, given in groups.items():
        if len(given) > 1:
            every = [o.flags[0] for o in recipe.options if o.group == group]
            raise CookbookError(f"{' and '.join(given)} both name the {group}; give one of {', '.join(every[:-1])} and {every[-1]}")
    return out, flags


def train_recipe(name: str, ctx: Any, values: dict[str, Any], keys: Mapping[str, str]) -> None:
    """What every train command does: the config (a resumed run's stored
    settings, then the options, then the trailing config words and logger
    options), and either the resolved config printed (--dry-run) or the
    recipe's `train(config, options)` run, then its summary."""
    from cookbook_cli.config import make_config, print_dry_run
    from cookbook_cli.plugins import registry
    from cookbook_cli.recipes.contract import stored_values
    from cookbook_cli.run.options import RunOptions

    recipe = registry.recipes.get(name).obj
    names, logger_options, words = trackers(values["log_to"], list(ctx.args))
    run_options = RunOptions(values["if_exists"] or "ask", argv=sys.argv, log_to=names, logger_options=logger_options)
    options, flags = option_values(recipe, ctx, values, keys)
    words = [_prefixed(w, recipe.words) for w in words]
    base = stored_values(recipe.config, options.get("log_dir"), name) if run_options.if_exists == "resume" else None
    config = make_config(recipe.config, options, words, option_names(ctx), flags, base)
    if values["dry_run"]:
        print_dry_run(config.resolve(name).to_json())
        return
    result = recipe.train(config, run_options)
    if result.start_step and result.start_step >= result.total_steps:
        more = f" (or {config.MORE_STEPS_OPTION} N)" if config.MORE_STEPS_OPTION.startswith("--") else ""
        typer.echo(
            f"The run in {result.log_dir} already finished its {result.total_steps} steps: nothing to train. "
            f"To train it further: cookbook train {name} --log-dir {result.log_dir} --if-exists resume --max-steps N{more}"
        )
    elif recipe.summary is not None:
        for line in recipe.summary(config, result):
            typer.echo(line)
    run_footer(result)


def _prefixed(word: str, prefixes: Mapping[str, str]) -> str:
    """A config word the recipe lets users write without its prefix (`env=...` -> `teachers.0.env=...`)."""
    key = word.partition("=")[0]
    head = key.split(".", 1)[0]
    return word.replace(head, prefixes[head], 1) if head in prefixes and not word.startswith("-") else word


def run_footer(result: Any) -> None:
    """The closing lines of every train command: the final weights, the run
    directory, how to see its curves and, when it wrote them, its transcripts."""
    transcripts = (result.log_dir / "transcripts").is_dir()
    width = len("transcripts: ") if transcripts else len("curves:     ")
    _weights_line(result)
    typer.echo(f"Log directory: {result.log_dir.resolve()}")
    typer.echo(f"  {'curves:'.ljust(width)}cookbook runs show {result.log_dir}")
    if transcripts:
        typer.echo(f"  {'transcripts:'.ljust(width)}{result.log_dir / 'transcripts'}")


def _weights_line(result: Any) -> None:
    """The final sampler weights, as a path the user can use from here."""
    from pathlib import Path

    path = (result.final_checkpoint or {}).get("sampler_path")
    if path:
        if "://" not in path and not Path(path).is_absolute():
            path = str((result.log_dir / path).resolve())
        typer.echo(f"  weights     {path}")
