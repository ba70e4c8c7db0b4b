"""hf_template: a model's own Jinja chat template as a renderer (sandboxed,
weights from growing prefixes, refusing templates that rewrite earlier text)."""

from __future__ import annotations

import json
import pickle

import pytest

from cookbook_cli.conversations import parse_conversation
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.chat_template import render_chat_template
from cookbook_cli.renderers.check import MATCH, SKIPPED, check_renderer, message_essentials
from cookbook_cli.renderers.check_conversations import builtin_conversations
from cookbook_cli.renderers.hf_template import HFTemplateRenderer
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.tokenizers import Tokenizer, get_tokenizer
from cookbook_cli.types import TrainOnWhat


@pytest.fixture(scope="session")
def llama(shared_tokenizers):
    return get_tokenizer(str(shared_tokenizers / "llama3"))


@pytest.fixture(scope="session")
def qwen(shared_tokenizers):
    return get_tokenizer(str(shared_tokenizers / "qwen3"))


@pytest.fixture(scope="session")
def deepseek(shared_tokenizers):
    return get_tokenizer(str(shared_tokenizers / "deepseek_v3"))


@pytest.fixture(scope="session")
def gpt_oss(shared_tokenizers):
    return get_tokenizer(str(shared_tokenizers / "gpt_oss"))


def msgs(*pairs):
    return parse_conversation({"messages": [{"role": r, "content": c} for r, c in pairs]}, "test").messages


def test_is_a_core_builtin(load_only, llama):
    from cookbook_cli.plugins import registry

    load_only()
    assert registry.renderers.get("hf_template").plugin == "cookbook-cli"
    assert get_renderer("hf_template", llama).template == llama.chat_template


def test_pieces_from_growing_prefixes_encode_as_the_whole_text(load_only, llama):
    """hf_template writes each message as the text its template adds when the
    message is appended, and encodes each piece on its own. On Llama 3's
    template those pieces give exactly the tokens of the template's whole text
    for every built-in conversation it accepts; it refuses (its own
    raise_exception) exactly the three that put tools before any user message
    or make parallel calls."""
    load_only()
    names, convs = builtin_conversations()
    report = check_renderer(get_renderer("hf_template", llama), convs, names=names)
    report.assert_ok()
    assert report.counts("generation") == {MATCH: 62, SKIPPED: 6}
    assert report.counts("supervised") == {MATCH: 41, SKIPPED: 3}
    assert report.cases(SKIPPED) == {"tools with system prompt", "parallel tool calls", "tools across turns with thinking"}
    for name, conv in zip(names, convs):
        if name in report.cases(SKIPPED):
            continue
        tokens, _ = get_renderer("hf_template", llama).build_supervised_tokens(conv.messages, "all_tokens", conv.tools or None)
        whole = render_chat_template(llama.chat_template, conv.messages, conv.tools or None, bos_token="<|begin_of_text|>")
        assert tokens == llama.encode(whole), name


def test_weights_from_growing_prefixes(load_only, llama):
    load_only()
    r = get_renderer("hf_template", llama)
    m = msgs(("system", "Be brief."), ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"))
    for mode, trained in [
        (TrainOnWhat.LAST_ASSISTANT_MESSAGE, "a2<|eot_id|>"),
        (TrainOnWhat.ALL_ASSISTANT_MESSAGES, "a1<|eot_id|>a2<|eot_id|>"),
        (TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES, None),
    ]:
        tokens, weights = r.build_supervised_tokens(m, mode)
        text = llama.decode([t for t, w in zip(tokens, weights) if w > 0])
        if trained is not None:
            assert text == trained  # the assistant header is the generation prompt's part: not trained
        else:
            assert "q1" in text and "Be brief." in text and "a1" not in text
    tokens, weights = r.build_supervised_tokens(m, TrainOnWhat.ALL_TOKENS)
    assert all(w == 1.0 for w in weights)
    assert tokens == llama.encode(render_chat_template(llama.chat_template, m, bos_token="<|begin_of_text|>"))
    prompt = r.build_generation_tokens(m[:4])
    assert tokens[: len(prompt)] == prompt  # the prompt is a token prefix of the continued conversation
    assert tokens.count(llama.token_to_id("<|begin_of_text|>")) == 1


def test_refuses_a_template_that_rewrites_earlier_turns(load_only, qwen, gpt_oss):
    load_only()
    m = msgs(("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"))
    with pytest.raises(CookbookError, match=r"rewrites earlier text when message 2 \(user\)") as e:
        get_renderer("hf_template", qwen).build_supervised_tokens(m)
    assert "<think>" in str(e.value)  # the excerpt shows what changed
    with pytest.raises(CookbookError, match="rewrites earlier text when message 2"):
        get_renderer("hf_template", gpt_oss).build_generation_tokens(m[:3])
    # a single exchange is fine, and equals the template
    r = get_renderer("hf_template", qwen)
    tokens, weights = r.build_supervised_tokens(m[:2])
    assert tokens == qwen.encode(render_chat_template(qwen.chat_template, m[:2]))
    assert qwen.decode([t for t, w in zip(tokens, weights) if w > 0]) == "<think>\n\n</think>\n\na1<|im_end|>\n"


def test_refuses_a_generation_prompt_that_is_not_a_prefix(llama):
    template = (
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<<assistant>>{% endif %}"
    )
    r = HFTemplateRenderer(llama, template)
    assert llama.decode(r.build_generation_tokens(msgs(("user", "hi")))) == "[user]hi<<assistant>>"
    with pytest.raises(CookbookError, match="generation prompt before message 1 is not a prefix"):
        r.build_supervised_tokens(msgs(("user", "hi"), ("assistant", "yo")))


def test_template_from_tokenizer_config(llama):
    """tokenizer_config.json's `chat_template`, here a list of named templates: "default" is used."""
    config = {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS {{ messages[0].content }}"},
            {"name": "default", "template": "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"},
        ],
    }
    tok = Tokenizer(llama.hf, "config-only", config)  # same vocabulary, no chat_template.jinja
    r = HFTemplateRenderer(tok)
    tokens = r.build_generation_tokens(msgs(("user", "hi")))
    assert tok.decode(tokens) == "<|begin_of_text|><user>hi<|eot_id|><assistant>"
    message, term = r.parse_response(tok.encode("hello<|eot_id|>"))
    assert message["content"] == "hello" and term is Termination.STOP


def test_no_template_is_a_clear_error(llama):
    with pytest.raises(CookbookError, match="has no chat template"):
        HFTemplateRenderer(Tokenizer(llama.hf, "bare", {}))


def test_sandbox(llama):
    r = HFTemplateRenderer(llama, "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(CookbookError, match="chat template failed to render: SecurityError"):
        r.build_generation_tokens(msgs(("user", "hi")))


def test_tool_arguments_as_strings_for_deepseek(load_only, deepseek):
    """DeepSeek's template concatenates the argument string; hf_template finds that shape."""
    load_only()
    c = parse_conversation(
        {"messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": '{"c": "Oslo"}'}}]},
            {"role": "tool", "content": "cold"},
            {"role": "assistant", "content": "Cold."},
        ]},
        "test",
    )
    r = get_renderer("hf_template", deepseek)
    tokens, _ = r.build_supervised_tokens(c.messages)
    assert '<｜tool▁sep｜>{"c": "Oslo"}<｜tool▁call▁end｜>' in deepseek.decode(tokens)


def test_generic_parsing(qwen):
    r = HFTemplateRenderer(qwen)
    sampled = '<think>\nhm\n</think>\n\nSure.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call><|im_end|>'
    message, term = r.parse_response(qwen.encode(sampled))
    assert term is Termination.STOP
    assert message_essentials(message) == {
        "role": "assistant", "text": "Sure.", "thinking": "hm", "tool_calls": [("f", '{"x": 1}')], "unparsed_tool_calls": []
    }
    _, term = r.parse_response(qwen.encode("no end"))
    assert term is Termination.NO_STOP


def test_only_prompts_for_the_assistant(llama):
    with pytest.raises(CookbookError, match="only prompt for an assistant"):
        HFTemplateRenderer(llama).build_generation_tokens(msgs(("user", "hi")), role="user")


def test_pickles(load_only, llama):
    load_only()
    r = get_renderer("hf_template", llama)
    m = msgs(("user", "hi"), ("assistant", "yo"))
    assert pickle.loads(pickle.dumps(r)).build_supervised_tokens(m) == r.build_supervised_tokens(m)
    custom = HFTemplateRenderer(llama, "{% for m in messages %}{{ m.content }}|{% endfor %}")
    custom.name = "hf_template"
    clone = pickle.loads(pickle.dumps(custom))
    assert clone.template == custom.template and clone.build_supervised_tokens(m) == custom.build_supervised_tokens(m)
