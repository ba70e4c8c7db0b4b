"""Distillation's dataset builder, registered through `register_dataset_builders`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_dataset_builders")
def register_builtin_prompt_builders(register: Register) -> None:
    from cookbook_cli.distill.prompts import PromptFileBuilder

    register(
        "prompt_file",
        PromptFileBuilder,
        "JSONL of conversations ending in a user turn: prompts for train distill (--prompts FILE selects it)",
        kind="prompt",
    )
