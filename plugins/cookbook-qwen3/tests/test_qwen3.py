"""cookbook-qwen3: registration, token parity with Qwen3's chat template,
every documented difference, refusals, parsing and round trips."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.conversations import parse_conversation
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.base import RenderedMessage
from cookbook_cli.renderers.check import (
    DOCUMENTED,
    MATCH,
    MISMATCH,
    SKIPPED,
    check_renderer,
    message_essentials,
    round_trip,
)
from cookbook_cli.renderers.check_conversations import builtin_conversations
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.tokenizers import get_tokenizer
from cookbook_cli.types import ToolSpec, TrainOnWhat, normalize_message
from cookbook_qwen3.renderer import Qwen3InstructRenderer

PLUGIN = "cookbook-qwen3"
NAMES = ("qwen3", "qwen3_disable_thinking", "qwen3_instruct")
runner = CliRunner()


@pytest.fixture(scope="session")
def tok_dir(shared_tokenizers):
    return str(shared_tokenizers / "qwen3")


@pytest.fixture(scope="session")
def tok(tok_dir):
    return get_tokenizer(tok_dir)


@pytest.fixture
def r(load_only, tok):
    """The three renderers, built through the registry with only this plugin loaded."""
    load_only(PLUGIN)
    return {name: get_renderer(name, tok) for name in NAMES}


def conv(*messages, tools=None):
    obj = {"messages": list(messages)}
    if tools:
        obj["tools"] = tools
    return parse_conversation(obj, "test")


def template_tokens(renderer, conversation, generation):
    text = renderer.template_text(
        renderer.tokenizer.chat_template, conversation.messages, conversation.tools or None, add_generation_prompt=generation
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


# -- registration --------------------------------------------------------------------
def test_plugin_adds_exactly_its_names(load_only):
    from cookbook_cli.plugins import registry

    load_only()
    core_renderers, core_models = set(registry.renderers.names()), set(registry.models.names())
    assert not {n for n in core_renderers | core_models if "qwen" in n.lower()}
    load_only(PLUGIN)
    assert set(registry.renderers.names()) - core_renderers == set(NAMES)
    assert set(registry.models.names()) - core_models == {"qwen3", "qwen3_instruct_2507"}
    assert {registry.renderers.get(n).plugin for n in NAMES} == {PLUGIN}


@pytest.mark.parametrize(
    ("model", "renderer"),
    [
        ("Qwen/Qwen3-8B", "qwen3"),
        ("Qwen/Qwen3-30B-A3B", "qwen3"),
        ("Qwen/Qwen3-4B-Instruct-2507", "qwen3_instruct"),
        ("Qwen/Qwen3-8B-Base", "role_colon"),
    ],
)
def test_models_info(load_only, model, renderer):
    load_only(PLUGIN)
    result = runner.invoke(app, ["models", "info", model])
    assert result.exit_code == 0, result.output
    assert f"renderer:   {renderer}" in result.output


def test_models_info_unknown_without_plugin(load_only):
    load_only()
    result = runner.invoke(app, ["models", "info", "Qwen/Qwen3-8B"])
    assert result.exit_code == 1 and "unknown model" in result.output


# -- parity with the chat template ----------------------------------------------------
NEWLINE_HISTORY = "answer starting with a newline (history)"
# Reasoning the template writes (after the last user message): refused with thinking off or on Instruct.
REASONING = {
    "thinking, last turn", "thinking via reasoning_content", "thinking in history and last", "thinking with code",
    "thinking, multi-line", "tool call with thinking and text", "tool call with thinking", "tools across turns with thinking",
}
NO_FINAL_ANSWER = {"only a user message", "system and user only", "user turn after answers", "ends with a tool result"}
ALL = set(builtin_conversations()[0])
PINNED = {
    # name: (generation counts, supervised counts, documented conversations, skipped conversations)
    "qwen3": ({MATCH: 67, DOCUMENTED: 1}, {MATCH: 43, DOCUMENTED: 1}, {NEWLINE_HISTORY}, set()),
    "qwen3_disable_thinking": (
        {MATCH: 64, DOCUMENTED: 1, SKIPPED: 3}, {MATCH: 35, DOCUMENTED: 1, SKIPPED: 8}, {NEWLINE_HISTORY}, REASONING
    ),
    # every final answer: the original template's empty think block, removed on the template side
    "qwen3_instruct": (
        {MATCH: 63, DOCUMENTED: 1, SKIPPED: 4}, {MATCH: 4, DOCUMENTED: 32, SKIPPED: 8}, ALL - REASONING - NO_FINAL_ANSWER, REASONING
    ),
}


@pytest.mark.parametrize("name", NAMES)
def test_parity_on_builtin_conversations(r, name):
    names, convs = builtin_conversations()
    report = check_renderer(r[name], convs, names=names)
    report.assert_ok()
    generation, supervised, documented, skipped = PINNED[name]
    assert report.counts("generation") == generation and report.counts("supervised") == supervised
    assert report.cases(DOCUMENTED) == documented and report.cases(SKIPPED) == skipped
    # The only documented generation prompt is the history answer that starts with newlines (same text).
    prompts = {(res.name, c.detail.split(";")[0]) for res in report.results for c in res.of_kind("generation") if c.status == DOCUMENTED}
    assert prompts == {(NEWLINE_HISTORY, "same text")}


class InstructTypo(Qwen3InstructRenderer):
    """Writes no think block, as documented, and one wrong token in a final answer."""

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        return [RenderedMessage(x.header, x.body.replace("Cherry.", "Cherry!"), x.trailer) for x in out]


def test_the_documented_difference_hides_no_other_token(r, tok):
    """qwen3_instruct's final answers are documented (the template side loses its
    empty think block); a one-token change inside such an answer still fails."""
    names, convs = builtin_conversations()
    report = check_renderer(InstructTypo(tok), convs, names=names)
    failed = {res.name for res in report.results if res.failed}
    assert not report.ok and failed == {"multi-turn with system"}
    (bad,) = [c for res in report.results if res.failed for c in res.comparisons if c.status == MISMATCH]
    assert bad.kind == "supervised" and "even with the documented difference(s) applied (Qwen3's original" in bad.detail
    assert bad.difference.renderer_next[0][1] == "!"


def test_history_reasoning_follows_the_template(r, tok):
    """Reasoning before the last user message is dropped; after it (a tool
    chain) it is kept; the final answer always gets a block."""
    c = conv(
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "old thoughts"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "", "reasoning_content": "need a tool", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "content": "cold"},
        {"role": "assistant", "content": "It is cold."},
        tools=[WEATHER],
    )
    tokens, _ = r["qwen3"].build_supervised_tokens(c.messages, "all_tokens", c.tools)
    text = tok.decode(tokens)
    assert "old thoughts" not in text
    assert "<think>\nneed a tool\n</think>\n\n<tool_call>" in text
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\nIt is cold.<|im_end|>\n")
    assert tokens == template_tokens(r["qwen3"], c, generation=False)


def test_disable_thinking_prompt_and_weights(r, tok):
    c = conv({"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"})
    rd = r["qwen3_disable_thinking"]
    prompt = rd.build_generation_tokens(c.messages[:1])
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert prompt == template_tokens(rd, conv(*[{"role": "user", "content": "2+2?"}]), generation=True)
    tokens, weights = rd.build_supervised_tokens(c.messages, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    assert tokens[: len(prompt)] == prompt  # the prompt is a token prefix of the example
    assert tok.decode([t for t, w in zip(tokens, weights) if w > 0]) == "4<|im_end|>"  # empty block not trained
    assert weights[-1] == 0.0 and tok.decode(tokens[-1:]) == "\n"  # the newline after <|im_end|> is not trained
    assert tokens == template_tokens(rd, c, generation=False)


def test_qwen3_trains_the_think_block(r, tok):
    c = conv({"role": "user", "content": "2+2?"}, {"role": "assistant", "content": [{"type": "thinking", "thinking": "add"}, {"type": "text", "text": "4"}]})
    tokens, weights = r["qwen3"].build_supervised_tokens(c.messages)
    assert tok.decode([t for t, w in zip(tokens, weights) if w > 0]) == "<think>\nadd\n</think>\n\n4<|im_end|>"


def test_documented_difference_leading_newline(r, tok):
    """A history answer starting with newlines: same text as the template, other
    tokens, because its header is encoded apart (keeping the prompt a prefix)."""
    c = conv({"role": "user", "content": "hi"}, {"role": "assistant", "content": "\n\nHello"}, {"role": "user", "content": "again"})
    ours = r["qwen3"].build_generation_tokens(c.messages)
    theirs = template_tokens(r["qwen3"], c, generation=True)
    assert ours != theirs and tok.decode(ours) == tok.decode(theirs)
    report = check_renderer(r["qwen3"], [c])
    statuses = {(x.kind, x.messages): x.status for x in report.results[0].comparisons}
    assert report.ok and statuses == {("generation", 1): MATCH, ("generation", 3): DOCUMENTED, ("supervised", 3): DOCUMENTED}


def test_documented_difference_instruct_final_turn(r, tok):
    c = conv({"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"})
    ri = r["qwen3_instruct"]
    ours, _ = ri.build_supervised_tokens(c.messages)
    assert tok.decode(ours).endswith("<|im_start|>assistant\nHello<|im_end|>\n")
    theirs = template_tokens(ri, c, generation=False)
    assert tok.decode(theirs).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n")
    prompt = template_tokens(ri, conv(*c.messages[:1]), generation=True)
    assert ours[: len(prompt)] == prompt == ri.build_generation_tokens(c.messages[:1])


# -- refusals -------------------------------------------------------------------------
def test_refusals(r):
    reasoning = conv({"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "r"})
    with pytest.raises(CookbookError, match="thinking is off"):
        r["qwen3_disable_thinking"].build_supervised_tokens(reasoning.messages)
    with pytest.raises(CookbookError, match="no thinking format"):
        r["qwen3_instruct"].build_supervised_tokens(reasoning.messages)
    no_user = conv({"role": "system", "content": "s"}, {"role": "assistant", "content": "a"})
    with pytest.raises(CookbookError, match="no user message"):
        r["qwen3_disable_thinking"].build_supervised_tokens(no_user.messages)
    r["qwen3"].build_supervised_tokens(no_user.messages)  # thinking on: fine, as the template writes it
    with pytest.raises(CookbookError, match="only assistant messages can think"):
        r["qwen3"].build_supervised_tokens([normalize_message({"role": "user", "content": [{"type": "thinking", "thinking": "x"}]})])


# -- parsing and round trips ----------------------------------------------------------
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}}
CALL2 = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Bern", "days": [1, 2]}'}}
ROUND_TRIPS = {
    "text": {"role": "assistant", "content": "The answer is 4."},
    "unicode and code": {"role": "assistant", "content": "结果：\n```python\nprint('héllo 👋')\n```"},
    "thinking": {"role": "assistant", "content": "4", "reasoning_content": "Two and two.\nFour."},
    "tool call": {"role": "assistant", "content": "", "tool_calls": [CALL]},
    "text and tool calls": {"role": "assistant", "content": "Checking both.", "tool_calls": [CALL, CALL2]},
    "thinking and tool call": {"role": "assistant", "content": "", "reasoning_content": "Use the tool.", "tool_calls": [CALL]},
}


@pytest.mark.parametrize(
    ("name", "case"),
    [(n, c) for n in NAMES for c in ROUND_TRIPS if n == "qwen3" or "reasoning_content" not in ROUND_TRIPS[c]],
)
def test_round_trip(r, name, case):
    """The trained tokens of the final answer parse back to the same message
    (thinking only with `qwen3`: the other two refuse it, tested above)."""
    message = normalize_message(ROUND_TRIPS[case])
    messages = [normalize_message({"role": "user", "content": "question"}), message]
    parsed, term = round_trip(r[name], messages, [ToolSpec.from_openai(WEATHER)])
    assert term is Termination.STOP
    assert message_essentials(parsed) == message_essentials(message)


def test_parse_keeps_malformed_calls(r, tok):
    text = 'Let me see.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>\n<tool_call>\n{"name": "x"'
    message, term = r["qwen3"].parse_response(tok.encode(text + "<|im_end|>"))
    assert term is Termination.STOP
    assert message["content"] == "Let me see."
    errors = [u.error for u in message["unparsed_tool_calls"]]
    assert len(errors) == 2 and "invalid JSON" in errors[0] and "missing" in errors[1]
    assert "tool_calls" not in message


@pytest.mark.parametrize(
    ("suffix", "termination"),
    [
        ("<|im_end|>", Termination.STOP),
        ("<|endoftext|>", Termination.EOS),
        ("", Termination.NO_STOP),
        ("<|im_end|>more<|im_end|>", Termination.MULTIPLE_STOPS),
    ],
)
def test_termination(r, tok, suffix, termination):
    message, term = r["qwen3"].parse_response(tok.encode("<think>\nhm\n</think>\n\nDone." + suffix))
    assert term is termination
    assert message_essentials(message)["text"] == "Done." and message_essentials(message)["thinking"] == "hm"


# -- the CLI -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_cli_check_passes(load_only, tok_dir, name):
    load_only(PLUGIN)
    result = runner.invoke(app, ["renderers", "check", name, "--tokenizer", tok_dir])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("OK")


def test_cli_check_fails_on_a_wrong_template(load_only, tok_dir, tok, tmp_path):
    wrong = tmp_path / "wrong.jinja"
    # one character changed: the tool response opener loses its newline
    wrong.write_text(tok.chat_template.replace("'\\n<tool_response>\\n'", "'\\n<tool_response>'"), encoding="utf-8")
    assert wrong.read_text(encoding="utf-8") != tok.chat_template
    load_only(PLUGIN)
    result = runner.invoke(app, ["renderers", "check", "qwen3", "--tokenizer", tok_dir, "--template", str(wrong)])
    assert result.exit_code == 1
    assert "first difference at token" in result.output and "FAILED" in result.output
    failed = {line.split(maxsplit=2)[2][:40].strip() for line in result.output.splitlines() if line.startswith("FAIL ")}
    assert "single tool call and result" in failed and "single turn" not in failed


def test_renderers_pickle_by_name(r):
    """Worker processes rebuild a renderer from its registry name and tokenizer."""
    import pickle

    names, convs = builtin_conversations()
    c = convs[names.index("tools across turns with thinking")]
    for name, renderer in r.items():
        clone = pickle.loads(pickle.dumps(renderer))
        assert type(clone) is type(renderer) and clone.name == name
        assert clone.build_generation_tokens(c.messages[:4], tools=c.tools) == renderer.build_generation_tokens(c.messages[:4], tools=c.tools)
