"""Tool calls and reasoning through the API with a thinking, tool-calling
renderer (Qwen3 on its real tokenizer). A tiny random model does not write
valid tool calls, so a stand-in sampler answers with the tokens Qwen3 would
write: what is real here is the prompt (tools declared the renderer's way)
and the parsing of the reply into `tool_calls` and `reasoning_content`."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openai")

WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "Weather in Oslo?"}]
REPLY = '<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>'


@pytest.fixture
def qwen3(shared_tokenizers):
    pytest.importorskip("cookbook_qwen3")
    from cookbook_qwen3.renderer import Qwen3Renderer

    from cookbook_cli.tokenizers import get_tokenizer

    return Qwen3Renderer(get_tokenizer(str(shared_tokenizers / "qwen3")))


def test_tool_calls_and_reasoning_come_back_in_openai_shape(qwen3, serve_standin):
    from cookbook_cli.types import ToolSpec

    from .conftest import GatedClient

    sampler = GatedClient(qwen3.tokenizer, lambda prompt: qwen3.tokenizer.encode(REPLY))
    with serve_standin(qwen3, sampler) as live:
        client = live.client()
        reply = client.chat.completions.create(model="standin", messages=ASK, tools=[WEATHER])
        assert sampler.prompts[-1] == qwen3.build_generation_tokens(ASK, tools=[ToolSpec.from_openai(WEATHER)])
        (choice,) = reply.choices
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.type == "function" and call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Oslo"}
        assert call.id
        assert choice.message.content == "Let me check."
        assert choice.message.model_extra["reasoning_content"] == "The user wants the weather."
        # The call and its result go back in the next request, rendered by the renderer.
        follow = [*ASK, choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
        client.chat.completions.create(model="standin", messages=follow, tools=[WEATHER])
        assert b"sunny" in qwen3.tokenizer.decode(sampler.prompts[-1]).encode()
        streamed = list(client.chat.completions.create(model="standin", messages=ASK, tools=[WEATHER], stream=True))
        calls = [tc for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert [(tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [("weather", {"city": "Oslo"})]
        # tool_choice none: the tools are not shown to the model.
        client.chat.completions.create(model="standin", messages=ASK, tools=[WEATHER], tool_choice="none")
        assert sampler.prompts[-1] == qwen3.build_generation_tokens(ASK)
