"""Core's preference losses (`train dpo --loss-type`, `train kto --loss-type`),
registered through `register_loss_functions` like a plugin's, with their kind."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_loss_functions")
def register_builtin_preference_losses(register: Register) -> None:
    from cookbook_cli.preference.losses import BUILTIN_PREFERENCE_LOSSES

    for name, loss in BUILTIN_PREFERENCE_LOSSES.items():
        register(name, loss, loss.description, kind=loss.kind)
