"""role_colon: the plain format for base models."""

from __future__ import annotations

import pytest

from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.termination import Termination


@pytest.fixture(scope="module")
def renderer(shared_tokenizers):
    return get_renderer("role_colon", str(shared_tokenizers / "llama3"))


def test_format(renderer):
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    tokens, weights = renderer.build_supervised_tokens(conv)
    tok = renderer.tokenizer
    assert tok.decode(tokens) == "<|begin_of_text|>System: Be brief.\n\nUser: 2+2?\n\nAssistant: 4\n\n"
    assert tok.decode([t for t, w in zip(tokens, weights) if w]) == " 4\n\n"
    assert tok.decode(renderer.build_generation_tokens(conv[:2])).endswith("User: 2+2?\n\nAssistant:")
    assert renderer.get_stop_sequences() == ["\n\nUser:"]


def test_parse(renderer):
    tok = renderer.tokenizer
    assert renderer.parse_response(tok.encode(" 4\n\nUser:")) == ({"role": "assistant", "content": "4"}, Termination.STOP)
    assert renderer.parse_response(tok.encode(" 4"))[1] is Termination.NO_STOP
    assert renderer.parse_response(tok.encode(" 4\n\nUser: x\n\nUser:"))[1] is Termination.MULTIPLE_STOPS
    # a sampled EOS ends the response; the blank line before it is the end of the message
    assert renderer.parse_response(tok.encode(" 4\n\n") + [tok.eos_token_id]) == ({"role": "assistant", "content": "4"}, Termination.EOS)
    assert renderer.parse_response(tok.encode(" 4") + [tok.eos_token_id]) == ({"role": "assistant", "content": "4"}, Termination.EOS)


def test_round_trip(renderer):
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "an answer"}]
    prompt = renderer.build_generation_tokens(conv[:1])
    full, _ = renderer.build_supervised_tokens(conv)
    assert full[: len(prompt)] == prompt
    assert renderer.parse_response(full[len(prompt) :] + renderer.tokenizer.encode("User:"))[0] == conv[1]
