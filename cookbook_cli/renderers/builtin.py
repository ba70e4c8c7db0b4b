"""Factories of core's built-in renderers: each imports its renderer only when called,
so registering them (at every CLI start) imports no renderer module."""

from __future__ import annotations

from typing import Any


def llama3(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.llama3 import Llama3Renderer

    return Llama3Renderer(tokenizer)


def role_colon(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.role_colon import RoleColonRenderer

    return RoleColonRenderer(tokenizer)


def smollm2(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.smollm2 import SmolLM2Renderer

    return SmolLM2Renderer(tokenizer)


def hf_template(tokenizer: Any) -> Any:
    from cookbook_cli.renderers.hf_template import HFTemplateRenderer

    return HFTemplateRenderer(tokenizer)
