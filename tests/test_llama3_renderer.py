"""llama3 renderer: token-exact against Meta's Llama 3.2 chat template, plus
one test for each documented difference from it."""

from __future__ import annotations

import pytest

from cookbook_cli import hookimpl
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.base import RenderedMessage
from cookbook_cli.renderers.chat_template import render_chat_template
from cookbook_cli.renderers.llama3 import Llama3Renderer
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.tokenizers import get_tokenizer
from cookbook_cli.types import TrainOnWhat

DATE = "26 Jul 2024"
PREAMBLE = f"Cutting Knowledge Date: December 2023\nToday Date: {DATE}\n\n"


def U(c: str) -> dict:
    return {"role": "user", "content": c}


def A(c: str) -> dict:
    return {"role": "assistant", "content": c}


def S(c: str) -> dict:
    return {"role": "system", "content": c}


# Content is already trimmed (the template trims; see test_whitespace_is_kept).
CONVERSATIONS = [
    [U("Hi"), A("Hello!")],
    [S("You are terse."), U("2+2?"), A("4")],
    [U("Tell me a joke."), A("Why did the chicken cross the road?"), U("Why?"), A("To get to the other side.")],
    [S("Réponds en français."), U("Quelle heure est-il ?"), A("Il est midi.")],
    [U("翻译：你好世界"), A("Hello, world")],
    [U("Write Python to add two numbers."), A("```python\ndef add(a, b):\n    return a + b\n```")],
    [U("emoji test 👩‍👩‍👧‍👦🎉"), A("🎉🎉 done")],
    [U("Empty reply please"), A("")],
    [S(""), U("empty system"), A("ok")],
    [U("Line one\nLine two\n\nLine four"), A("Got 3 non-empty lines.")],
    [U("Tabs\tand  double  spaces"), A("Noted:\tyes")],
    [U("مرحبا بالعالم"), A("Hello world in Arabic.")],
    [U("नमस्ते"), A("Namaste!")],
    [S("System A"), U("q1"), A("a1"), U("q2"), A("a2"), U("q3"), A("a3")],
    [U("JSON please"), A('{"a": [1, 2, 3], "b": {"c": null}}')],
    [U("numbers 1234567890 3.14159 -42"), A("1e10")],
    [U("<html><body>hi</body></html>"), A("That is HTML.")],
    [U("a" * 500), A("b" * 300)],
    [U("Quote: \"it's\" 'fine'"), A("Yes, it's fine.")],
    [U("What about special chars like $%^&*()?"), A("They are fine: $%^&*()")],
    [S("Multi\nline\nsystem"), U("ok?"), A("ok.")],
    [U("Only a user message")],
]


@pytest.fixture(scope="module")
def tok(shared_tokenizers):
    return get_tokenizer(str(shared_tokenizers / "llama3" / "tokenizer.json"))


@pytest.fixture(scope="module")
def renderer(tok):
    return get_renderer("llama3", tok)


def with_preamble(messages: list[dict]) -> list[dict]:
    """The template always writes a system turn with a date preamble; give our
    renderer the same text so the two can be compared."""
    if messages and messages[0]["role"] == "system":
        return [S(PREAMBLE + messages[0]["content"])] + messages[1:]
    return [S(PREAMBLE)] + messages


def template_tokens(tok, messages, add_generation_prompt):
    text = render_chat_template(
        tok.chat_template, messages, add_generation_prompt=add_generation_prompt, bos_token="<|begin_of_text|>", date_string=DATE
    )
    return tok.encode(text)


@pytest.mark.parametrize("idx", range(len(CONVERSATIONS)))
def test_generation_prompt_matches_template(tok, renderer, idx):
    conv = CONVERSATIONS[idx]
    history = conv[:-1] if conv[-1]["role"] == "assistant" else conv
    ours = renderer.build_generation_tokens(with_preamble(history))
    assert ours == template_tokens(tok, history, add_generation_prompt=True)


@pytest.mark.parametrize("idx", [i for i, c in enumerate(CONVERSATIONS) if c[-1]["role"] == "assistant"])
def test_supervised_example_matches_template(tok, renderer, idx):
    conv = CONVERSATIONS[idx]
    tokens, weights = renderer.build_supervised_tokens(with_preamble(conv), TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    assert tokens == template_tokens(tok, conv, add_generation_prompt=False)
    assert len(weights) == len(tokens)
    # Trained tokens decode to exactly the assistant contents plus their <|eot_id|>.
    trained = tok.decode([t for t, w in zip(tokens, weights) if w > 0])
    assert trained == "".join(m["content"] + "<|eot_id|>" for m in conv if m["role"] == "assistant")


def test_exactly_one_bos(tok, renderer):
    tokens, _ = renderer.build_supervised_tokens([U("hi"), A("yo")])
    assert tokens.count(128000) == 1 and tokens[0] == 128000
    # The tokenizer's own post-processor would add one; the renderer never asks it to.
    assert tok.hf.encode("x").ids[0] == 128000


def test_difference_no_date_preamble(tok, renderer):
    conv = [U("Hi"), A("Hello!")]
    ours = renderer.build_supervised_tokens(conv)[0]
    assert ours != template_tokens(tok, conv, False)
    assert "Cutting Knowledge" not in tok.decode(ours)
    assert "Cutting Knowledge" in tok.decode(template_tokens(tok, conv, False))


def test_difference_whitespace_is_kept(tok, renderer):
    conv = [U("  padded  "), A("\nanswer \n")]
    ours = tok.decode(renderer.build_supervised_tokens(with_preamble(conv))[0])
    theirs = tok.decode(template_tokens(tok, conv, False))
    assert "  padded  <|eot_id|>" in ours and "\nanswer \n<|eot_id|>" in ours
    assert "\n\npadded<|eot_id|>" in theirs and "\n\nanswer<|eot_id|>" in theirs


def test_difference_tools_and_thinking_refused(renderer):
    from cookbook_cli.types import ToolSpec

    with pytest.raises(CookbookError, match="no tool-call format"):
        renderer.build_generation_tokens([U("x")], tools=[ToolSpec("f")])
    thinking = {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "4"}]}
    with pytest.raises(CookbookError, match="no thinking format"):
        renderer.build_supervised_tokens([U("2+2"), thinking])


def test_generation_prompt_is_prefix_of_supervised(renderer):
    conv = [S("sys"), U("q"), A("  a with leading spaces")]
    prompt = renderer.build_generation_tokens(conv[:-1])
    full, weights = renderer.build_supervised_tokens(conv)
    assert full[: len(prompt)] == prompt
    assert all(w == 0 for w in weights[: len(prompt)]) and all(w == 1 for w in weights[len(prompt) :])


def test_prefill_is_appended(tok, renderer):
    toks = renderer.build_generation_tokens([U("q")], prefill="Sure,")
    assert tok.decode(toks).endswith("<|start_header_id|>assistant<|end_header_id|>\n\nSure,")


def test_model_input_types(renderer):
    mi, weights = renderer.build_supervised_example([U("q"), A("a")])
    assert mi.to_ints() == renderer.build_supervised_tokens([U("q"), A("a")])[0]
    assert renderer.build_generation_prompt([U("q")]).length == len(renderer.build_generation_tokens([U("q")]))


# -- stop-token parsing -------------------------------------------------------------


def test_parse_with_stop_token(tok, renderer):
    msg, term = renderer.parse_response(tok.encode("The answer is 4.") + [128009])
    assert msg == {"role": "assistant", "content": "The answer is 4."} and term is Termination.STOP
    assert not term.malformed


def test_parse_without_stop_token(tok, renderer):
    msg, term = renderer.parse_response(tok.encode("cut off mid"))
    assert msg["content"] == "cut off mid" and term is Termination.NO_STOP and term.malformed


def test_parse_with_two_stop_tokens(tok, renderer):
    msg, term = renderer.parse_response(tok.encode("one") + [128009] + tok.encode("two") + [128009])
    assert msg["content"] == "one" and term is Termination.MULTIPLE_STOPS and term.malformed


def test_parse_with_eos(tok, renderer):
    msg, term = renderer.parse_response(tok.encode("done") + [128001])
    assert msg["content"] == "done" and term is Termination.EOS and not term.malformed


def test_round_trip_supervised_to_parse(tok, renderer):
    conv = [U("q"), A("multi\nline answer, with ünïcode")]
    prompt = renderer.build_generation_tokens(conv[:-1])
    full, _ = renderer.build_supervised_tokens(conv)
    msg, term = renderer.parse_response(full[len(prompt) :])
    assert msg == conv[-1] and term is Termination.STOP


def test_renderer_pickles_by_name(renderer):
    import pickle

    clone = pickle.loads(pickle.dumps(renderer))
    assert clone.name == "llama3" and type(clone) is type(renderer)
    assert clone.build_generation_tokens([U("x")]) == renderer.build_generation_tokens([U("x")])


def test_renderers_check_passes_against_metas_template(shared_tokenizers):
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    result = CliRunner().invoke(app, ["renderers", "check", "llama3", "--tokenizer", str(shared_tokenizers / "llama3")])
    assert result.exit_code == 0, result.output
    assert "0 mismatch(es)" in result.output


def test_template_text_drops_only_the_date_preamble(tok, renderer):
    conv = [U("Hi"), A("Hello!")]
    text = renderer.template_text(tok.chat_template, conv, None, add_generation_prompt=False,
                                  special_tokens={"bos_token": "<|begin_of_text|>"})
    assert tok.encode(text) == renderer.build_supervised_tokens(conv)[0]
    sys_conv = [S("Be brief."), U("Hi"), A("Hello!")]
    text = renderer.template_text(tok.chat_template, sys_conv, None, add_generation_prompt=False,
                                  special_tokens={"bos_token": "<|begin_of_text|>"})
    assert tok.encode(text) == renderer.build_supervised_tokens(sys_conv)[0]


# -- `renderers check` against Meta's template: pinned, and a wrong renderer fails ----------
DOCUMENTED = {"trailing whitespace", "leading space", "answer starting with a newline (history)", "long text"}
THINKING = {"thinking, last turn", "thinking via reasoning_content", "thinking in history and last", "thinking with code", "thinking, multi-line"}
TOOLS = {
    "tools declared, plain answer", "tools with system prompt", "single tool call and result", "tool call after text",
    "parallel tool calls", "tool call with thinking and text", "tool call with thinking", "multi-step tool use",
    "tool call with unicode and nested arguments", "tool call with no arguments", "ends with a tool result",
    "tool result as JSON, then a new question", "tools across turns with thinking",
}


def test_check_pins_every_documented_and_skipped_case(renderer):
    """Whitespace-edged content is the one documented difference (the check puts
    the content back where the template trimmed it, then requires equal tokens);
    thinking and tools are refused."""
    from cookbook_cli.renderers.check import DOCUMENTED as DOC, MATCH, SKIPPED
    from cookbook_cli.testing import assert_renderer_matches_template

    report = assert_renderer_matches_template(renderer, documented=DOCUMENTED, skipped=THINKING | TOOLS)
    assert report.counts("generation") == {MATCH: 33, DOC: 5, SKIPPED: 30}
    assert report.counts("supervised") == {MATCH: 22, DOC: 4, SKIPPED: 18}


class WhitespaceTypo(Llama3Renderer):
    """Keeps whitespace, as documented, and also changes one token inside a
    whitespace-edged message: the documented difference must not hide it."""

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        return [RenderedMessage(r.header, r.body.replace("Trailing spaces", "Trailing space"), r.trailer) for r in out]


class TypoPlugin:
    @hookimpl
    def register_renderers(self, register):
        register("llama3_typo", WhitespaceTypo, "llama3 with a one-token bug in a whitespace-edged message")


def test_a_bug_inside_a_whitespace_edged_message_fails(load_only, cookbook_plugin, tok, shared_tokenizers):
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app
    from cookbook_cli.testing import assert_renderer_matches_template

    with pytest.raises(AssertionError, match=r"renderer: ' space'\(3634\).*\n.*template: ' spaces'\(12908\)"):
        assert_renderer_matches_template(WhitespaceTypo(tok), documented=DOCUMENTED, skipped=THINKING | TOOLS)
    load_only()
    cookbook_plugin(TypoPlugin(), name="llama3-typo")
    result = CliRunner().invoke(app, ["renderers", "check", "llama3_typo", "--tokenizer", str(shared_tokenizers / "llama3")])
    assert result.exit_code == 1 and result.output.rstrip().endswith("FAILED")
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 1 and "trailing whitespace" in failed[0]
    assert "even with the documented difference(s) applied (the template strips whitespace" in result.output
