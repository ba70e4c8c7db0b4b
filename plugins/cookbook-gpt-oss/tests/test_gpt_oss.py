"""cookbook-gpt-oss: registration, token parity with gpt-oss's chat template
(Harmony), the TypeScript tool declarations, every documented difference,
parsing and round trips."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from cookbook_cli import hookimpl
from cookbook_cli.cli.main import app
from cookbook_cli.conversations import parse_conversation
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.base import RenderedMessage
from cookbook_cli.renderers.chat_template import render_chat_template
from cookbook_cli.renderers.check import DOCUMENTED, MATCH, MISMATCH, SKIPPED, check_renderer, message_essentials, round_trip
from cookbook_cli.renderers.check_conversations import builtin_conversations
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.tokenizers import get_tokenizer
from cookbook_cli.types import ToolSpec, normalize_message
from cookbook_gpt_oss.renderer import GptOssRenderer

PLUGIN = "cookbook-gpt-oss"
EFFORTS = ("low", "medium", "high")
NAMES = ("gpt_oss_no_sysprompt",) + tuple(f"gpt_oss_{e}_reasoning" for e in EFFORTS)
runner = CliRunner()


@pytest.fixture(scope="session")
def tok_dir(shared_tokenizers):
    return str(shared_tokenizers / "gpt_oss")


@pytest.fixture(scope="session")
def tok(tok_dir):
    return get_tokenizer(tok_dir)


@pytest.fixture
def r(load_only, tok):
    load_only(PLUGIN)
    return {name: get_renderer(name, tok) for name in NAMES}


def conv(*messages, tools=None):
    return parse_conversation({"messages": list(messages), **({"tools": tools} if tools else {})}, "test")


def template_text(renderer, c, generation):
    return renderer.template_text(renderer.tokenizer.chat_template, c.messages, c.tools or None, add_generation_prompt=generation)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
U = {"role": "user", "content": "2+2?"}


def call(name, args, id=None):
    d = {"type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
    return {**d, "id": id} if id else d


# -- registration ---------------------------------------------------------------------------
def test_plugin_adds_exactly_its_names(load_only):
    from cookbook_cli.plugins import registry

    load_only()
    core_renderers, core_models = set(registry.renderers.names()), set(registry.models.names())
    assert not {n for n in core_renderers | core_models if "gpt" in n.lower()}
    load_only(PLUGIN)
    assert set(registry.renderers.names()) - core_renderers == set(NAMES)
    assert set(registry.models.names()) - core_models == {"gpt_oss"}


def test_models_info(load_only):
    load_only(PLUGIN)
    result = runner.invoke(app, ["models", "info", "openai/gpt-oss-20b"])
    assert result.exit_code == 0, result.output
    assert "renderer:   gpt_oss_medium_reasoning" in result.output


# -- parity ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_parity_on_builtin_conversations(r, name):
    names, convs = builtin_conversations()
    report = check_renderer(r[name], convs, names=names)
    report.assert_ok()
    assert report.counts("generation") == {MATCH: 65, DOCUMENTED: 1, SKIPPED: 2}
    assert report.counts("supervised") == {MATCH: 41, DOCUMENTED: 1, SKIPPED: 2}
    not_equal = {(res.name, c.status) for res in report.results for c in res.comparisons if c.status != MATCH}
    assert not_equal == {
        ("parallel tool calls", DOCUMENTED),  # the template writes only the first call
        ("two system messages", SKIPPED),  # refused: the template drops a second system message
        ("tool call with thinking and text", SKIPPED),  # the template refuses thinking + text + call
    }


class SecondCallTypo(GptOssRenderer):
    """Writes every call, as documented, with one wrong token inside the second."""

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        return [RenderedMessage(x.header, x.body.replace('{"location": "Rome"}', '{"location": "Roma"}'), x.trailer) for x in out]


class TypoPlugin:
    @hookimpl
    def register_renderers(self, register):
        register("gpt_oss_typo", lambda tok: SecondCallTypo(tok, "low"), "gpt-oss with a bug in the second tool call")


def test_a_bug_inside_the_second_tool_call_fails(load_only, cookbook_plugin, tok, tok_dir):
    """The documented difference (one call per message on the template side)
    does not excuse a wrong token in the call the template leaves out."""
    names, convs = builtin_conversations()
    report = check_renderer(SecondCallTypo(tok, "low"), convs, names=names)
    assert {res.name for res in report.results if res.failed} == {"parallel tool calls"}
    bad = [c for res in report.results for c in res.comparisons if c.status == "mismatch"]
    assert [c.kind for c in bad] == ["supervised"] and "even with the documented difference(s) applied" in bad[0].detail
    assert bad[0].difference.renderer_next[0][1] != bad[0].difference.template_next[0][1]
    load_only(PLUGIN)
    cookbook_plugin(TypoPlugin(), name="gpt-oss-typo")
    result = runner.invoke(app, ["renderers", "check", "gpt_oss_typo", "--tokenizer", tok_dir])
    assert result.exit_code == 1 and result.output.rstrip().endswith("FAILED")
    assert [line.split(maxsplit=2)[2][:19] for line in result.output.splitlines() if line.startswith("FAIL ")] == ["parallel tool calls"]


def test_parallel_results_are_named_by_the_call_they_answer(r, tok):
    """Parallel calls to two functions: the template names both results after
    the latest call; the renderer each after its own, which the check's
    documented difference states on the template side."""
    rm = r["gpt_oss_medium_reasoning"]
    c = conv(
        U,
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"city": "A"}, "w"), call("search", {"q": "B"}, "s")]},
        {"role": "tool", "content": "sunny", "tool_call_id": "w"},
        {"role": "tool", "content": "found", "tool_call_id": "s"},
        tools=[WEATHER],
    )
    ours = tok.decode(rm.build_generation_tokens(c.messages, tools=c.tools))
    assert '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"sunny"' in ours
    assert '<|start|>functions.search to=assistant<|channel|>commentary<|message|>"found"' in ours
    theirs = template_text(rm, c, generation=True)
    # the template writes only the first call and names both results after it
    assert "to=functions.search" not in theirs and theirs.count("<|start|>functions.get_weather to=assistant") == 2
    report = check_renderer(rm, [c])
    assert report.ok and [x.status for x in report.results[0].comparisons] == [MATCH, DOCUMENTED, DOCUMENTED]
    assert "names each tool result after the latest call" in report.results[0].comparisons[2].detail

    class SwapsTheNames(GptOssRenderer):
        def _tool_name(self, messages, i):
            return {"get_weather": "search", "search": "get_weather"}[super()._tool_name(messages, i)]

    wrong = check_renderer(SwapsTheNames(tok, "medium"), [c])
    assert [x.status for x in wrong.results[0].comparisons] == [MATCH, MISMATCH, MISMATCH]


def test_system_message_reasoning_and_date(r, tok):
    c = conv({"role": "system", "content": "Be terse."}, U)
    for effort in EFFORTS:
        renderer = r[f"gpt_oss_{effort}_reasoning"]
        text = tok.decode(renderer.build_generation_tokens(c.messages))
        assert text == (
            "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
            f"Knowledge cutoff: 2024-06\nCurrent date: {renderer.current_date}\n\nReasoning: {effort}\n\n"
            "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
            "<|start|>developer<|message|># Instructions\n\nBe terse.\n\n<|end|>"
            "<|start|>user<|message|>2+2?<|end|><|start|>assistant"
        )
        assert renderer.current_date == date.today().isoformat()
    nosys = tok.decode(r["gpt_oss_no_sysprompt"].build_generation_tokens(c.messages))
    assert nosys.startswith("<|start|>developer<|message|># Instructions")


def test_no_sysprompt_is_the_template_minus_its_system_message(r, tok):
    c = conv(U)
    full = render_chat_template(tok.chat_template, c.messages, add_generation_prompt=True, strftime_now=lambda f: "2025-01-01")
    ours = tok.decode(r["gpt_oss_no_sysprompt"].build_generation_tokens(c.messages))
    assert full.startswith("<|start|>system<|message|>") and full.endswith(ours)
    assert full[: -len(ours)].count("<|end|>") == 1  # exactly the system message is left out


def test_final_answer_and_history(r, tok):
    think = {"role": "assistant", "content": "4", "reasoning_content": "add"}
    rm = r["gpt_oss_medium_reasoning"]
    tokens, weights = rm.build_supervised_tokens(conv(U, think).messages)
    trained = tok.decode([t for t, w in zip(tokens, weights) if w > 0])
    assert trained == "<|channel|>analysis<|message|>add<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>"
    # in a prompt the same answer is history: no analysis, <|end|> instead of <|return|>
    c = conv(U, think)
    prompt = rm.build_generation_tokens(c.messages)
    assert tok.decode(prompt).endswith("<|start|>assistant<|channel|>final<|message|>4<|end|><|start|>assistant")
    assert prompt == tok.encode(template_text(rm, c, generation=True))


def test_tool_results(r, tok):
    rm = r["gpt_oss_low_reasoning"]
    c = conv(
        U,
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"city": "Oslo"}, "a")]},
        {"role": "tool", "content": 'cold "and" dark', "tool_call_id": "a"},
        tools=[WEATHER],
    )
    text = tok.decode(rm.build_generation_tokens(c.messages, tools=c.tools))
    assert '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Oslo"}<|call|>' in text
    assert text.endswith('<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"cold \\"and\\" dark"<|end|><|start|>assistant')
    assert "# Tools\n\n## functions\n\nnamespace functions {\n\n// Weather for a city.\ntype get_weather = (_: {\ncity: string,\n}) => any;\n\n} // namespace functions<|end|>" in text
    # gpt-oss's template raises on a tool result with no tool call before it, named or not
    for orphan in (conv(U, {"role": "tool", "content": "x"}), conv(U, {"role": "tool", "content": "x", "name": "get_weather"})):
        with pytest.raises(CookbookError, match="tool result with no assistant tool call before it"):
            rm.build_generation_tokens(orphan.messages)


def test_documented_multiple_calls_and_thinking_with_text(r, tok):
    rm = r["gpt_oss_high_reasoning"]
    two = conv(U, {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"city": "A"}), call("search", {"q": "B"})]}, {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"})
    text = tok.decode(rm.build_generation_tokens(two.messages))
    assert "to=functions.get_weather" in text and "to=functions.search<|channel|>" in text
    assert "<|start|>functions.search to=assistant" in text  # the second result answers the second call
    assert "to=functions.search" not in template_text(rm, two, generation=True)  # the template writes only the first
    assert check_renderer(rm, [two]).ok
    both = conv(U, {"role": "assistant", "content": "Checking.", "reasoning_content": "need data", "tool_calls": [call("get_weather", {"city": "A"})]})
    with pytest.raises(CookbookError, match="both content and thinking"):
        template_text(rm, both, generation=False)
    parsed, term = round_trip(rm, both.messages)
    assert term is Termination.STOP and message_essentials(parsed) == message_essentials(both.messages[-1])


def test_refuses_a_late_system_message(r):
    with pytest.raises(CookbookError, match="not first"):
        r["gpt_oss_medium_reasoning"].build_supervised_tokens(conv(U, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}).messages)


# -- TypeScript tool declarations -----------------------------------------------------------
SCHEMAS = {
    "nested object": {"type": "object", "properties": {"o": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}, "required": ["a"]}}},
    "oneOf with description and default": {"type": "object", "properties": {"u": {"oneOf": [{"type": "string", "description": "text", "default": "x"}, {"type": "number"}, {"type": "object"}]}}},
    "oneOf with a parameter default": {"type": "object", "properties": {"u": {"oneOf": [{"type": "string"}, {"type": "integer"}], "default": "q"}}},
    "enum, nullable, arrays, type lists": {
        "type": "object",
        "properties": {
            "e": {"type": "string", "enum": ["a", "b"], "default": "a", "description": "pick one"},
            "n": {"type": "string", "nullable": True},
            "objs": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
            "anything": {"type": "array"},
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "nullable": True},
            "t": {"type": ["string", "null"]},
            "flag": {"type": "boolean", "default": False},
            "z": {},
        },
        "required": ["e"],
    },
    "no parameters": {"type": "object", "properties": {}},
}


@pytest.mark.parametrize("schema", list(SCHEMAS))
def test_tool_declarations_match_the_template(r, tok, schema):
    tools = [ToolSpec("f", "Does f.", SCHEMAS[schema]), ToolSpec("g", "", {"type": "object", "properties": {"x": {"type": "integer"}}})]
    c = parse_conversation({"messages": [U], "tools": [t.to_openai() for t in tools]}, "test")
    rm = r["gpt_oss_medium_reasoning"]
    assert rm.build_generation_tokens(c.messages, tools=c.tools) == tok.encode(template_text(rm, c, generation=True))


# -- parsing and round trips ----------------------------------------------------------------
ROUND_TRIPS = {
    "text": {"role": "assistant", "content": "The answer is 4."},
    "thinking and text": {"role": "assistant", "content": "4", "reasoning_content": "Two and two.\nFour."},
    "unicode and code": {"role": "assistant", "content": "结果：\n```python\nprint('héllo 👋')\n```", "reasoning_content": "代码"},
    "tool call": {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"city": "Zürich"})]},
    "thinking and tool call": {"role": "assistant", "content": "", "reasoning_content": "Use the tool.", "tool_calls": [call("get_weather", {"city": "Rome", "days": [1, 2]})]},
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_round_trip(r, name, case):
    message = normalize_message(ROUND_TRIPS[case])
    parsed, term = round_trip(r[name], [normalize_message(U), message], [ToolSpec.from_openai(WEATHER)])
    assert term is Termination.STOP
    assert message_essentials(parsed) == message_essentials(message)


def test_text_of_a_tool_call_message_comes_back_as_thinking(r):
    """Documented: the template writes such text to the analysis channel."""
    message = normalize_message({"role": "assistant", "content": "Let me check.", "tool_calls": [call("get_weather", {"city": "Oslo"})]})
    parsed, _ = round_trip(r["gpt_oss_medium_reasoning"], [normalize_message(U), message])
    assert message_essentials(parsed)["thinking"] == "Let me check." and message_essentials(parsed)["text"] == ""


@pytest.mark.parametrize(
    "sampled",
    [
        '<|channel|>analysis<|message|>hm<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"city": "Oslo"}<|call|>',
        '<|channel|>analysis<|message|>hm<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo"}<|call|>',
    ],
)
def test_parse_both_recipient_placements(r, tok, sampled):
    message, term = r["gpt_oss_medium_reasoning"].parse_response(tok.encode(sampled))
    assert term is Termination.STOP
    assert message_essentials(message) == {
        "role": "assistant", "text": "", "thinking": "hm", "tool_calls": [("get_weather", '{"city": "Oslo"}')], "unparsed_tool_calls": []
    }


def test_parse_preamble_and_malformed_call(r, tok):
    sampled = (
        "<|channel|>commentary<|message|>Checking the weather.<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{city: Oslo}<|call|>"
    )
    message, term = r["gpt_oss_medium_reasoning"].parse_response(tok.encode(sampled))
    assert term is Termination.STOP and message["content"] == "Checking the weather."
    assert "tool_calls" not in message
    (bad,) = message["unparsed_tool_calls"]
    assert "invalid JSON" in bad.error and "{city: Oslo}" in bad.raw_text


@pytest.mark.parametrize(
    ("suffix", "termination"),
    [
        ("<|return|>", Termination.STOP),
        ("", Termination.NO_STOP),
        ("<|return|><|start|>assistant<|channel|>final<|message|>again<|return|>", Termination.MULTIPLE_STOPS),
    ],
)
def test_termination(r, tok, suffix, termination):
    message, term = r["gpt_oss_no_sysprompt"].parse_response(tok.encode("<|channel|>final<|message|>Done." + suffix))
    assert term is termination and message["content"] == "Done."


# -- the CLI -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_cli_check_passes(load_only, tok_dir, name):
    load_only(PLUGIN)
    result = runner.invoke(app, ["renderers", "check", name, "--tokenizer", tok_dir])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("OK")


def test_cli_check_fails_on_a_wrong_template(load_only, tok_dir, tok, tmp_path):
    wrong = tmp_path / "wrong.jinja"
    # tool results written raw instead of as a JSON string
    wrong.write_text(tok.chat_template.replace("message.content|tojson", "message.content"), encoding="utf-8")
    assert wrong.read_text(encoding="utf-8") != tok.chat_template
    load_only(PLUGIN)
    result = runner.invoke(app, ["renderers", "check", "gpt_oss_low_reasoning", "--tokenizer", tok_dir, "--template", str(wrong)])
    assert result.exit_code == 1
    assert "first difference at token" in result.output and result.output.rstrip().endswith("FAILED")


def test_renderers_pickle_by_name(r):
    """Worker processes rebuild a renderer from its registry name and tokenizer."""
    import pickle

    names, convs = builtin_conversations()
    c = convs[names.index("tools across turns with thinking")]
    for name, renderer in r.items():
        clone = pickle.loads(pickle.dumps(renderer))
        assert type(clone) is type(renderer) and clone.name == name
        assert clone.build_generation_tokens(c.messages[:4], tools=c.tools) == renderer.build_generation_tokens(c.messages[:4], tools=c.tools)
