"""cookbook-deepseek: registration, token parity with DeepSeek V3.1's chat
template, every documented difference, both tokenizers (V3's file, where
<think> is text, and V3.1's, where it is one token), parsing and round trips."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.conversations import parse_conversation
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.base import RenderedMessage
from cookbook_cli.renderers.check import DOCUMENTED, MATCH, SKIPPED, check_renderer, message_essentials, round_trip
from cookbook_cli.renderers.check_conversations import builtin_conversations
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.tokenizers import Tokenizer, get_tokenizer
from cookbook_cli.types import ToolSpec, TrainOnWhat, normalize_message
from cookbook_deepseek.renderer import DeepSeekV3Renderer, DeepSeekV3ThinkingRenderer

PLUGIN = "cookbook-deepseek"
NAMES = ("deepseekv3", "deepseekv3_thinking")
runner = CliRunner()


@pytest.fixture(scope="session")
def tok_dir(shared_tokenizers):
    return str(shared_tokenizers / "deepseek_v3")


@pytest.fixture(scope="session")
def tok(tok_dir):
    return get_tokenizer(tok_dir)


@pytest.fixture(scope="session")
def tok31(tok, shared_tokenizers):
    """DeepSeek-V3.1's tokenizer as believed: V3's, with placeholder ids 128798/128799
    renamed to <think>/</think> (so each is one token)."""
    import tokenizers

    obj = json.loads(tok.hf.to_str())
    for t in obj["added_tokens"]:
        if t["id"] == 128798:
            t["content"] = "<think>"
        elif t["id"] == 128799:
            t["content"] = "</think>"
    hf = tokenizers.Tokenizer.from_str(json.dumps(obj))
    return Tokenizer(hf, "deepseek-v3.1 (simulated)", tok.config, tok.chat_template)


@pytest.fixture
def r(load_only, tok):
    load_only(PLUGIN)
    return {name: get_renderer(name, tok) for name in NAMES}


def conv(*messages, tools=None):
    return parse_conversation({"messages": list(messages), **({"tools": tools} if tools else {})}, "test")


def template_tokens(renderer, c, generation):
    from cookbook_cli.renderers.chat_template import template_special_tokens

    text = renderer.template_text(
        renderer.tokenizer.chat_template,
        c.messages,
        c.tools or None,
        add_generation_prompt=generation,
        special_tokens=template_special_tokens(renderer.tokenizer),
    )
    return renderer.tokenizer.encode(text)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
U = {"role": "user", "content": "2+2?"}


# -- registration ----------------------------------------------------------------------
def test_plugin_adds_exactly_its_names(load_only):
    from cookbook_cli.plugins import registry

    load_only()
    core = set(registry.renderers.names()) | set(registry.models.names())
    assert not {n for n in core if "deepseek" in n.lower()}
    core_renderers, core_models = set(registry.renderers.names()), set(registry.models.names())
    load_only(PLUGIN)
    assert set(registry.renderers.names()) - core_renderers == set(NAMES)
    assert set(registry.models.names()) - core_models == {"deepseek_v3"}


def test_models_info(load_only):
    load_only(PLUGIN)
    result = runner.invoke(app, ["models", "info", "deepseek-ai/DeepSeek-V3.1", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["renderer"] == "deepseekv3" and info["tokenizer"] == "deepseek-ai/DeepSeek-V3.1"
    assert info["other_renderers"] == ["deepseekv3_thinking"]


# -- parity ------------------------------------------------------------------------------
ALL = set(builtin_conversations()[0])
TOOL_CONVERSATIONS = {name for name, c in zip(*builtin_conversations()) if c.tools}
# conversations that do not end with an answer to a user message (no thinking-mode answer to write)
NO_ANSWER_TO_A_USER = {"only a user message", "system and user only", "user turn after answers"}


def test_parity_non_thinking(r):
    """Tool declarations are the one documented difference: the template gets the
    model card's tool section (model_card.py) in its system prompt."""
    names, convs = builtin_conversations()
    report = check_renderer(r["deepseekv3"], convs, names=names)
    report.assert_ok()
    assert report.counts("generation") == {MATCH: 39, DOCUMENTED: 29}
    assert report.counts("supervised") == {MATCH: 31, DOCUMENTED: 13}
    assert report.cases(DOCUMENTED) == TOOL_CONVERSATIONS and len(TOOL_CONVERSATIONS) == 13
    assert report.cases(SKIPPED) == set()


def test_parity_thinking(r):
    """...and every training example that ends with an answer to a user message
    (written as the model produces it after the thinking prompt) is documented."""
    names, convs = builtin_conversations()
    report = check_renderer(r["deepseekv3_thinking"], convs, names=names)
    report.assert_ok()
    assert report.counts("generation") == {MATCH: 39, DOCUMENTED: 29}
    assert report.counts("supervised") == {MATCH: 3, DOCUMENTED: 41}
    assert report.cases(DOCUMENTED) == ALL - NO_ANSWER_TO_A_USER and report.cases(SKIPPED) == set()
    for res in report.results:
        for c in res.of_kind("supervised"):
            if c.status == DOCUMENTED and res.name not in TOOL_CONVERSATIONS | {"ends with a tool result"}:
                assert "continues the template's generation prompt token for token" in c.detail


class ThinkingTypo(DeepSeekV3ThinkingRenderer):
    """Writes the thinking-mode answer, as documented, with one wrong token in its reasoning."""

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        return [RenderedMessage(x.header, x.body.replace("17*3 = 51.", "17*3 = 52."), x.trailer) for x in out]


class ToolSectionTypo(DeepSeekV3Renderer):
    """The model card's tool section with the blank line vLLM's example template adds after "Where:"."""

    def render_conversation(self, messages, tools):
        return [RenderedMessage(x.header, x.body.replace("Where:\n-", "Where:\n\n-"), x.trailer) for x in super().render_conversation(messages, tools)]

    def preamble(self, messages, tools):
        return super().preamble(messages, tools).replace("Where:\n-", "Where:\n\n-")


def test_documented_differences_hide_no_other_token(tok):
    names, convs = builtin_conversations()
    report = check_renderer(ThinkingTypo(tok), convs, names=names)
    assert {res.name for res in report.results if res.failed} == {"thinking, last turn"}
    # The tool section is compared with the model card's text, not with the renderer's own:
    # a renderer that writes it differently fails on every conversation that declares tools.
    report = check_renderer(ToolSectionTypo(tok), convs, names=names)
    assert {res.name for res in report.results if res.failed} == TOOL_CONVERSATIONS


# The V3.1 model card's tool format ("ToolCall", huggingface.co/deepseek-ai/DeepSeek-V3.1), written
# out for WEATHER: the independent reference for the renderer and for model_card.py.
CARD_WEATHER = (
    "## Tools\nYou have access to the following tools:\n\n"
    "### get_weather\nDescription: Weather for a city.\n\n"
    'Parameters: {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}\n\n'
    "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>"
    "{{additional_tool_calls}}<｜tool▁calls▁end｜>\n\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces"
)


def test_the_checks_reference_is_the_model_cards_text():
    from cookbook_deepseek.model_card import card_tool_description

    assert card_tool_description([ToolSpec.from_openai(WEATHER)]) == CARD_WEATHER


def test_thinking_answer_continues_the_thinking_prompt(r, tok):
    c = conv(U, {"role": "assistant", "content": "4", "reasoning_content": "Add them."})
    rt = r["deepseekv3_thinking"]
    prompt = template_tokens(rt, conv(U), generation=True)
    assert tok.decode(prompt).endswith("<｜User｜>2+2?<｜Assistant｜><think>")
    tokens, weights = rt.build_supervised_tokens(c.messages)
    assert tokens[: len(prompt)] == prompt == rt.build_generation_tokens([U])
    assert tok.decode([t for t, w in zip(tokens, weights) if w > 0]) == "Add them.</think>4<｜end▁of▁sentence｜>"
    # the template itself can only write the answer without its reasoning
    assert tok.decode(template_tokens(rt, c, generation=False)).endswith("<｜Assistant｜></think>4<｜end▁of▁sentence｜>")


def test_history_drops_reasoning_and_tool_turns_stay_non_thinking(r, tok):
    c = conv(
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "reasoning_content": "use the tool", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "content": "cold"},
        tools=[WEATHER],
    )
    # The model card's layout: system prompt, the tool section, the turns; arguments verbatim
    # (no re-serialisation), no reasoning, nothing after the tool output (tool use is non-thinking).
    expected = (
        "<｜begin▁of▁sentence｜>Be brief.\n\n" + CARD_WEATHER + "<｜User｜>Weather in Oslo?<｜Assistant｜></think>"
        '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city":"Oslo"}'
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁output▁begin｜>cold<｜tool▁output▁end｜>"
    )
    for name in NAMES:
        tokens = r[name].build_generation_tokens(c.messages, tools=c.tools)
        assert tok.decode(tokens) == expected and tokens == tok.encode(expected)


def test_tool_declarations_are_the_model_cards(r, tok):
    """The V3.1 template writes no tool declarations: the renderer writes the model
    card's section, after the BOS when there is no system prompt."""
    from cookbook_cli.renderers.chat_template import render_chat_template

    c = conv(U, tools=[WEATHER])
    raw = render_chat_template(tok.chat_template, c.messages, c.tools, add_generation_prompt=True, bos_token="<｜begin▁of▁sentence｜>")
    assert "## Tools" not in raw  # the template ignores `tools`
    ours = tok.decode(r["deepseekv3"].build_generation_tokens(c.messages, tools=c.tools))
    assert ours == "<｜begin▁of▁sentence｜>" + CARD_WEATHER + "<｜User｜>2+2?<｜Assistant｜></think>"
    two = conv(U, tools=[WEATHER, {"type": "function", "function": {"name": "now", "description": "Time.", "parameters": {"type": "object", "properties": {}}}}])
    ours = tok.decode(r["deepseekv3"].build_generation_tokens(two.messages, tools=two.tools))
    blocks = CARD_WEATHER.replace(
        '"required": ["city"]}\n\n', '"required": ["city"]}\n\n### now\nDescription: Time.\n\nParameters: {"type": "object", "properties": {}}\n\n'
    )
    assert ours == "<｜begin▁of▁sentence｜>" + blocks + "<｜User｜>2+2?<｜Assistant｜></think>"


def test_refuses_late_system_message(r):
    with pytest.raises(CookbookError, match="put system messages first"):
        r["deepseekv3"].build_supervised_tokens(conv(U, {"role": "system", "content": "late"}, {"role": "assistant", "content": "4"}).messages)


# -- the two tokenizers ---------------------------------------------------------------------
def test_think_tags_are_text_in_v3s_tokenizer(r, tok):
    assert len(tok.encode("</think>")) == 3
    c = conv(U, {"role": "assistant", "content": "```python\nprint(4)\n```"})
    tokens, weights = r["deepseekv3"].build_supervised_tokens(c.messages)
    assert tokens == template_tokens(r["deepseekv3"], c, generation=False)
    # </think> is encoded with the answer, as in the template's text, so it is in the trained body
    assert tok.decode([t for t, w in zip(tokens, weights) if w > 0]).startswith("</think>```python")
    prompt = r["deepseekv3"].build_generation_tokens([U])
    assert tokens[: len(prompt)] == prompt
    # The documented cost: where the tokenizer merges ">" with the answer, the example equals the
    # template's text but no longer starts with the (template's own) generation prompt.
    merged = conv(U, {"role": "assistant", "content": "A fox"})
    tokens, _ = r["deepseekv3"].build_supervised_tokens(merged.messages)
    assert tokens == template_tokens(r["deepseekv3"], merged, generation=False)
    assert prompt == template_tokens(r["deepseekv3"], conv(U), generation=True) and tokens[: len(prompt)] != prompt


def test_v31_tokenizer(load_only, tok31):
    """With <think>/</think> as single tokens the renderer puts </think> in the
    (untrained) header, and both parity and the prompt-prefix property hold everywhere."""
    load_only(PLUGIN)
    assert tok31.encode("<think></think>") == [128798, 128799]
    names, convs = builtin_conversations()
    for name in NAMES:
        renderer = get_renderer(name, tok31)
        report = check_renderer(renderer, convs, names=names)
        report.assert_ok()
        assert report.counts("generation") == {MATCH: 39, DOCUMENTED: 29}
        assert report.counts("supervised") == ({MATCH: 31, DOCUMENTED: 13} if name == "deepseekv3" else {MATCH: 3, DOCUMENTED: 41})
        # one token each: no boundary merges, every documented difference holds token for token
        assert all("same text" not in c.detail for res in report.results for c in res.comparisons)
    rd = get_renderer("deepseekv3", tok31)
    c = conv(U, {"role": "assistant", "content": "**4**"})
    tokens, weights = rd.build_supervised_tokens(c.messages)
    prompt = rd.build_generation_tokens([U])
    assert prompt[-1] == 128799 and tokens[: len(prompt)] == prompt
    assert tok31.decode([t for t, w in zip(tokens, weights) if w > 0]) == "**4**<｜end▁of▁sentence｜>"


# -- parsing and round trips -------------------------------------------------------------
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}}
COMPACT = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bern","days":[1,2]}'}}
ROUND_TRIPS = {
    "text": {"role": "assistant", "content": "The answer is 4."},
    "unicode and code": {"role": "assistant", "content": "结果：\n```python\nprint('héllo 👋')\n```"},
    "tool call": {"role": "assistant", "content": "", "tool_calls": [CALL]},
    "text and tool calls": {"role": "assistant", "content": "Checking both.", "tool_calls": [CALL, COMPACT]},
    "thinking": {"role": "assistant", "content": "4", "reasoning_content": "Two and two.\nFour."},
    "thinking and tool call": {"role": "assistant", "content": "", "reasoning_content": "Use the tool.", "tool_calls": [CALL]},
}


@pytest.mark.parametrize(
    ("name", "case"),
    [(n, c) for n in NAMES for c in ROUND_TRIPS if n == "deepseekv3_thinking" or "reasoning_content" not in ROUND_TRIPS[c]],
)
def test_round_trip(r, name, case):
    """Answers parse back to the same message; arguments byte for byte. (The
    non-thinking renderer drops reasoning, as the template does: not a round trip.)"""
    message = normalize_message(ROUND_TRIPS[case])
    parsed, term = round_trip(r[name], [normalize_message(U), message], [ToolSpec.from_openai(WEATHER)])
    assert term is Termination.STOP
    assert message_essentials(parsed) == message_essentials(message)


def test_non_thinking_drops_reasoning(r, tok):
    c = conv(U, {"role": "assistant", "content": "4", "reasoning_content": "secret"})
    tokens, _ = r["deepseekv3"].build_supervised_tokens(c.messages)
    assert "secret" not in tok.decode(tokens)


def test_parse_keeps_malformed_calls(r, tok):
    text = (
        "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": }<｜tool▁call▁end｜>"
        "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Rome\"}<｜tool▁call▁end｜>"
        "<｜tool▁call▁begin｜>no separator<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    )
    message, term = r["deepseekv3"].parse_response(tok.encode(text))
    assert term is Termination.STOP and message["content"] == "Let me check."
    assert [(c.name, c.arguments) for c in message["tool_calls"]] == [("get_weather", '{"city": "Rome"}')]
    errors = [u.error for u in message["unparsed_tool_calls"]]
    assert "invalid JSON" in errors[0] and "no '<｜tool▁sep｜>'" in errors[1]
    unclosed, _ = r["deepseekv3"].parse_response(tok.encode("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜end▁of▁sentence｜>"))
    assert "missing" in unclosed["unparsed_tool_calls"][0].error and "tool_calls" not in unclosed


@pytest.mark.parametrize(
    ("response", "thinking", "text", "termination"),
    [
        ("reason</think>answer<｜end▁of▁sentence｜>", "reason", "answer", Termination.STOP),  # prompt opened <think>
        ("<think>reason</think>answer<｜end▁of▁sentence｜>", "reason", "answer", Termination.STOP),
        ("answer<｜end▁of▁sentence｜>", None, "answer", Termination.STOP),
        ("</think>answer<｜end▁of▁sentence｜>", None, "answer", Termination.STOP),  # an empty block is no thinking
        ("reason</think>answ", "reason", "answ", Termination.NO_STOP),
        ("a<｜end▁of▁sentence｜>b<｜end▁of▁sentence｜>", None, "a", Termination.MULTIPLE_STOPS),
    ],
)
def test_parse_thinking_and_termination(r, tok, response, thinking, text, termination):
    message, term = r["deepseekv3_thinking"].parse_response(tok.encode(response))
    assert term is termination
    assert message_essentials(message)["thinking"] == thinking and message_essentials(message)["text"] == text


# -- the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_cli_check_passes(load_only, tok_dir, name):
    load_only(PLUGIN)
    result = runner.invoke(app, ["renderers", "check", name, "--tokenizer", tok_dir])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("OK")


def test_cli_check_fails_on_a_wrong_template(load_only, tok_dir, tok, tmp_path):
    wrong = tmp_path / "wrong.jinja"
    # the non-thinking answer marker without its closed think block
    wrong.write_text(tok.chat_template.replace("{{'<｜Assistant｜></think>'}}", "{{'<｜Assistant｜>'}}"), encoding="utf-8")
    assert wrong.read_text(encoding="utf-8") != tok.chat_template
    load_only(PLUGIN)
    result = runner.invoke(app, ["renderers", "check", "deepseekv3", "--tokenizer", tok_dir, "--template", str(wrong), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["counts"]["generation"] == {"match": 39, "documented": 14, "mismatch": 15}
    failed = {c["name"] for c in report["conversations"] if any(x["status"] == "mismatch" for x in c["comparisons"])}
    assert failed == {name for name, c in zip(*builtin_conversations()) if any(m.get("tool_calls") for m in c.messages)}


def test_renderers_pickle_by_name(r):
    """Worker processes rebuild a renderer from its registry name and tokenizer."""
    import pickle

    names, convs = builtin_conversations()
    c = convs[names.index("tools across turns with thinking")]
    for name, renderer in r.items():
        clone = pickle.loads(pickle.dumps(renderer))
        assert type(clone) is type(renderer) and clone.name == name
        assert clone.build_generation_tokens(c.messages[:4], tools=c.tools) == renderer.build_generation_tokens(c.messages[:4], tools=c.tools)
