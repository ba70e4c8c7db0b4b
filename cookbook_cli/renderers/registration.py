"""Core's built-in renderers, registered through `register_renderers`."""

from __future__ import annotations

from typing import Any

from cookbook_cli.plugins.spec import Register, hookimpl


def _llama3(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.llama3 import Llama3Renderer

    return Llama3Renderer(tokenizer)


def _role_colon(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.role_colon import RoleColonRenderer

    return RoleColonRenderer(tokenizer)


def _smollm2(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.smollm2 import SmolLM2Renderer

    return SmolLM2Renderer(tokenizer)


def _hf_template(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.hf_template import HFTemplateRenderer

    return HFTemplateRenderer(tokenizer)


@hookimpl(specname="register_renderers")
def register_builtin_renderers(register: Register) -> None:
    register("llama3", _llama3, "Llama 3.x Instruct: <|start_header_id|>role<|end_header_id|> ... <|eot_id|>")
    register("role_colon", _role_colon, "Plain 'User: ... / Assistant: ...' for base models")
    register(
        "hf_template",
        _hf_template,
        "Any model's own Jinja chat template (from its tokenizer); weights from growing prefixes",
    )
    register("smollm2", _smollm2, "SmolLM2 Instruct: ChatML <|im_start|>role ... <|im_end|>, SmolLM2's default system prompt")
