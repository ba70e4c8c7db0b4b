"""Core's own plugin: registers the built-ins through the same hooks as any
third-party package. Each layer owns its registrations; imports stay inside the
hook functions so that loading plugins imports nothing heavy."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl
def register_renderers(register: Register) -> None:
    from cookbook_cli.renderers.registration import register_builtin_renderers

    register_builtin_renderers(register)


@hookimpl
def register_models(register: Register) -> None:
    from cookbook_cli.models import register_builtin_models

    register_builtin_models(register)


@hookimpl
def register_dataset_builders(register: Register) -> None:
    from cookbook_cli.data.registration import register_builtin_dataset_builders
    from cookbook_cli.distill.registration import register_builtin_prompt_builders

    register_builtin_dataset_builders(register)
    register_builtin_prompt_builders(register)


@hookimpl
def register_engines(register: Register) -> None:
    from cookbook_cli.engines.registration import register_builtin_engines

    register_builtin_engines(register)


@hookimpl
def register_loss_functions(register: Register) -> None:
    from cookbook_cli.engines.registration import register_builtin_losses

    register_builtin_losses(register)


@hookimpl
def register_envs(register: Register) -> None:
    from cookbook_cli.rl.registration import register_builtin_envs

    register_builtin_envs(register)


@hookimpl
def register_loggers(register: Register) -> None:
    from cookbook_cli.loggers.registration import register_builtin_loggers

    register_builtin_loggers(register)
