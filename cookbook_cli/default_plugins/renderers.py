"""Core's built-in renderers, registered through `register_renderers`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_renderers")
def register_builtin_renderers(register: Register) -> None:
    from cookbook_cli.renderers.builtin import hf_template, llama3, role_colon, smollm2

    register("llama3", llama3, "Llama 3.x Instruct: <|start_header_id|>role<|end_header_id|> ... <|eot_id|>")
    register("role_colon", role_colon, "Plain 'User: ... / Assistant: ...' for base models")
    register(
        "hf_template",
        hf_template,
        "Any model's own Jinja chat template (from its tokenizer); weights from growing prefixes",
    )
    register("smollm2", smollm2, "SmolLM2 Instruct: ChatML <|im_start|>role ... <|im_end|>, SmolLM2's default system prompt")
