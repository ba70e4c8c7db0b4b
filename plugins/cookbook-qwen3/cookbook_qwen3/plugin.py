"""The plugin object: registers Qwen3's renderers and model families.

Imports of the renderer module happen inside the factories, so loading the
plugin (which `cookbook --help` does) imports nothing heavy."""

from __future__ import annotations

from typing import Any

from cookbook_cli import hookimpl
from cookbook_cli.models import ModelFamily


def _factory(class_name: str) -> Any:
    def make(tokenizer: Any) -> Any:
        from cookbook_qwen3 import renderer

        return getattr(renderer, class_name)(tokenizer)

    make.__name__ = f"make_{class_name}"
    return make


@hookimpl
def register_renderers(register: Any) -> None:
    register("qwen3", _factory("Qwen3Renderer"), "Qwen3 hybrid models, thinking on: <|im_start|>role ... <|im_end|>, <think> blocks, <tool_call>")
    register(
        "qwen3_disable_thinking",
        _factory("Qwen3DisableThinkingRenderer"),
        "Qwen3 hybrid models, thinking off (enable_thinking=false): empty <think></think> opens each answer",
    )
    register("qwen3_instruct", _factory("Qwen3InstructRenderer"), "Qwen3 2507 Instruct models: Qwen3's format without <think> blocks")


#: The exponent of the learning-rate rule over the hidden size (tinker-cookbook's Qwen sweep).
QWEN3_LR_EXPONENT = 0.0775


@hookimpl
def register_models(register: Any) -> None:
    # Registered first: its patterns are the more specific ones.
    register(
        "qwen3_instruct_2507",
        ModelFamily(
            renderer="qwen3_instruct",
            patterns=("*qwen3-*instruct-2507*",),
            models=(
                "Qwen/Qwen3-4B-Instruct-2507",
                "Qwen/Qwen3-30B-A3B-Instruct-2507",
                "Qwen/Qwen3-235B-A22B-Instruct-2507",
            ),
            context_length=262144,
            lr_exponent=QWEN3_LR_EXPONENT,
            hidden_sizes=(
                ("Qwen/Qwen3-4B-Instruct-2507", 2560),
                ("Qwen/Qwen3-30B-A3B-Instruct-2507", 2048),
                ("Qwen/Qwen3-235B-A22B-Instruct-2507", 4096),
            ),
        ),
        "Qwen3 2507 Instruct (non-thinking) models",
    )
    register(
        "qwen3",
        ModelFamily(
            renderer="qwen3",
            patterns=("*qwen3-*b", "*qwen3-*b-fp8", "*qwen3-*b-base"),
            models=(
                "Qwen/Qwen3-0.6B",
                "Qwen/Qwen3-1.7B",
                "Qwen/Qwen3-4B",
                "Qwen/Qwen3-8B",
                "Qwen/Qwen3-14B",
                "Qwen/Qwen3-32B",
                "Qwen/Qwen3-30B-A3B",
                "Qwen/Qwen3-235B-A22B",
                "Qwen/Qwen3-8B-Base",
            ),
            other_renderers=("qwen3_disable_thinking",),
            context_length=32768,
            base_renderer="role_colon",
            base_patterns=("*-base",),
            lr_exponent=QWEN3_LR_EXPONENT,
            hidden_sizes=(
                ("Qwen/Qwen3-0.6B", 1024),
                ("Qwen/Qwen3-1.7B", 2048),
                ("Qwen/Qwen3-4B", 2560),
                ("Qwen/Qwen3-8B", 4096),
                ("Qwen/Qwen3-8B-Base", 4096),
                ("Qwen/Qwen3-14B", 5120),
                ("Qwen/Qwen3-32B", 5120),
                ("Qwen/Qwen3-30B-A3B", 2048),
                ("Qwen/Qwen3-235B-A22B", 4096),
            ),
        ),
        "Qwen3 hybrid-thinking models (the original Qwen3 release)",
    )
