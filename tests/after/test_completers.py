"""The message completer: a parsed assistant message with how it ended and the
sampled tokens' logprobs; tool calls through the renderer's tool-call format."""

from __future__ import annotations

import asyncio

import pytest

from cookbook_cli.completers import (
    Completion,
    RendererMessageCompleter,
    SamplingClientCompleter,
    SamplingSettings,
    termination_of,
)
from cookbook_cli.errors import CookbookError


def _complete(renderer, client, messages, n=1, tools=None, **settings):
    completer = RendererMessageCompleter.over(renderer, client, SamplingSettings(**settings))
    return asyncio.run(completer(messages, tools, n))


def test_clean_reply_is_parsed_with_its_tokens_and_logprobs(toy_renderer, scripted_client):
    tok = toy_renderer.tokenizer
    reply = tok.encode(" four\n\nUser:")
    client = scripted_client(lambda prompt, i: (reply, "stop"))
    (c,) = _complete(toy_renderer, client, [{"role": "user", "content": "say four"}], max_tokens=12, temperature=0.5)
    assert isinstance(c, Completion)
    assert c.message == {"role": "assistant", "content": "four"}
    assert c.termination == "stop" and c.ok
    assert c.tokens == reply and c.logprobs == [-0.25] * len(reply)
    assert c.logprob == pytest.approx(-0.25 * len(reply))
    prompt, n, params = client.calls[0]
    assert prompt == toy_renderer.build_generation_tokens([{"role": "user", "content": "say four"}])
    assert (n, params.max_tokens, params.temperature, params.stop) == (1, 12, 0.5, ["\n\nUser:"])


def test_length_and_malformed_endings_are_told_apart(toy_renderer, scripted_client):
    tok = toy_renderer.tokenizer
    cut = tok.encode(" four and mo")
    twice = tok.encode(" a\n\nUser: b\n\nUser:")
    answers = [(cut, "length"), (twice, "stop")]
    client = scripted_client(lambda prompt, i: answers[i])
    c_len, c_bad = _complete(toy_renderer, client, [{"role": "user", "content": "hi"}], n=2)
    assert (c_len.termination, c_len.ok) == ("length", False)
    assert c_len.message["content"] == "four and mo"
    assert (c_bad.termination, c_bad.ok) == ("malformed", False)


def test_termination_mapping():
    assert termination_of("stop", "stop") == "stop"
    assert termination_of("eos", "stop") == "eos"
    assert termination_of("no_stop", "length") == "length"
    assert termination_of("no_stop", "stop") == "malformed"
    assert termination_of("multiple_stops", "stop") == "malformed"


def test_tool_calls_come_back_parsed(shared_tokenizers, scripted_client):
    pytest.importorskip("cookbook_qwen3")
    from cookbook_qwen3.renderer import Qwen3InstructRenderer

    from cookbook_cli.tokenizers import get_tokenizer
    from cookbook_cli.types import ToolSpec

    renderer = Qwen3InstructRenderer(get_tokenizer(str(shared_tokenizers / "qwen3")))
    tok = renderer.tokenizer
    text = 'Checking.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": broken\n</tool_call><|im_end|>'
    client = scripted_client(lambda prompt, i: (tok.encode(text), "stop"))
    tools = [ToolSpec("weather", "today's weather", {"type": "object", "properties": {"city": {"type": "string"}}})]
    (c,) = _complete(renderer, client, [{"role": "user", "content": "weather in Paris?"}], tools=tools)
    assert c.termination == "stop"
    (call,) = c.message["tool_calls"]
    assert (call.name, call.arguments_dict()) == ("weather", {"city": "Paris"})
    assert len(c.message["unparsed_tool_calls"]) == 1
    assert c.message["content"] == "Checking."
    assert "weather" in tok.decode(client.calls[0][0])  # the declaration is in the prompt


def test_seeded_completer_repeats_its_per_call_seeds(scripted_client):
    def seeds(seed):
        client = scripted_client(lambda prompt, i: ([1], "stop"))
        completer = SamplingClientCompleter(client, 4, seed=seed)
        from tinker.types import ModelInput

        for _ in range(3):
            asyncio.run(completer(ModelInput.from_ints([1, 2]), ["x"], 1))
        return [c[2].seed for c in client.calls]

    assert seeds(7) == seeds(7) and seeds(7) != seeds(8)
    assert seeds(None) == [None, None, None]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("max_tokens", 0, "max_tokens"), ("temperature", -1.0, "temperature"), ("top_p", 0.0, "top_p"), ("top_k", 0, "top_k")],
)
def test_bad_sampling_settings(field, value, message):
    with pytest.raises(CookbookError, match=message):
        SamplingSettings(**{field: value}).check()


def test_rl_types_share_the_completers_tokens_type():
    from cookbook_cli.rl.types import TokensWithLogprobs

    from cookbook_cli import completers

    assert TokensWithLogprobs is completers.TokensWithLogprobs
