"""Hook specifications. Every hook but `register_commands` receives a `register`
callback; core owns naming, de-duplication and error messages.

The callback's signature is the same for every hook:
`register(name: str, obj: object, description: str = "", **extra)`.
Extra keywords are kept on the registry entry (`Entry.extra`); the ones core
reads are listed on each hook below.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "cookbook"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


@hookspec
def register_renderers(register: Register) -> None:
    """Register chat formats: `register(name, factory, description)` where
    `factory(tokenizer) -> Renderer`."""


@hookspec
def register_models(register: Register) -> None:
    """Register model families: `register(name, ModelFamily(...), description)`."""


@hookspec
def register_envs(register: Register) -> None:
    """Register RL dataset builders: `register(name, builder_factory, description)`."""


@hookspec
def register_dataset_builders(register: Register) -> None:
    """Register supervised / preference dataset builders:
    `register(name, builder_factory, description, kind="supervised" | "preference")`;
    `cookbook datasets list` shows `kind`."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register evaluators run by `cookbook eval` and by recipes every
    `eval_every` steps: `register(name, EvaluatorClass, description)`, where
    `EvaluatorClass` is a chz subclass of `cookbook_cli.evaluation.Evaluator`
    whose fields are its options (`cookbook eval NAME key=value`)."""


@hookspec
def register_loss_functions(register: Register) -> None:
    """Register losses over per-token logprobs: `register(name, fn, description)`,
    where `fn(data, logprobs_list) -> (loss, metrics)` runs through
    `forward_backward_custom`. Core marks the engines' own losses `builtin=True`."""


@hookspec
def register_engines(register: Register) -> None:
    """Register training/sampling engines: `register(name, factory, description,
    status=callable)`; the optional `status() -> str` says, cheaply, whether the
    engine can run here (shown by `cookbook engines list`)."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register experiment trackers: `register(name, factory, description,
    fields={field: help}, requires=("module",), extra="pip extra")`, where
    `factory(ctx: LoggerContext) -> Logger` (see `cookbook_cli.loggers`);
    `fields` are the `logger.<name>.<field>=value` options it accepts, and
    `requires` the modules `cookbook loggers list` checks are installed."""


@hookspec
def register_recipes(register: Register) -> None:
    """Register training methods: `register(name, Recipe(config_class, train,
    summary, options=..., aliases=..., words=...), description)` with
    `cookbook_cli.recipes.Recipe`: `config_class` a chz class inheriting
    `cookbook_cli.run.config.RunConfig`, `train(config, RunOptions) -> result`.
    `cookbook train NAME` and its options are generated from the config's fields."""


@hookspec
def register_commands(app: Any) -> None:
    """Add sub-commands to the typer `app`."""
