"""The comparison engine behind `cookbook renderers check`, its built-in
conversations, and the command itself (exit 0 on parity, 1 on any mismatch)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cookbook_cli
from cookbook_cli.cli.main import app
from cookbook_cli.conversations import load_conversations, parse_conversation
from cookbook_cli.renderers.base import RenderedMessage
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers.check import (
    DOCUMENTED,
    ERROR,
    MATCH,
    MISMATCH,
    SKIPPED,
    check_renderer,
    first_difference,
    generation_prompt_lengths,
)
from cookbook_cli.renderers.check_conversations import builtin_conversations, write_jsonl
from cookbook_cli.renderers.differences import TemplateDifference, TemplateDifferenceError
from cookbook_cli.renderers.hf_template import HFTemplateRenderer
from cookbook_cli.tokenizers import get_tokenizer
from cookbook_cli.types import text_of, thinking_of

runner = CliRunner()


@pytest.fixture(scope="session")
def llama_dir(shared_tokenizers):
    return str(shared_tokenizers / "llama3")


@pytest.fixture(scope="session")
def llama(llama_dir):
    return get_tokenizer(llama_dir)


def conv(*pairs):
    return parse_conversation({"messages": [{"role": r, "content": c} for r, c in pairs]}, "test")


# -- the built-in conversations ---------------------------------------------------------------
def test_builtin_conversations_are_varied(tmp_path):
    names, convs = builtin_conversations()
    assert len(convs) >= 40 and len(set(names)) == len(names)
    msgs = [m for c in convs for m in c.messages]
    assert sum(1 for c in convs if c.tools) >= 10
    assert sum(1 for c in convs if any(m.get("tool_calls") for m in c.messages)) >= 9
    assert sum(1 for c in convs if any(len(m.get("tool_calls", [])) > 1 for m in c.messages)) >= 1
    assert sum(1 for c in convs if any(thinking_of(m) for m in c.messages)) >= 8
    assert sum(1 for c in convs if c.messages[0]["role"] == "system") >= 8
    assert sum(1 for c in convs if sum(m["role"] == "user" for m in c.messages) >= 2) >= 6
    assert sum(1 for c in convs if c.messages[-1]["role"] != "assistant") >= 4
    text = "".join(text_of(m) for m in msgs)
    for sample in ("你好", "مرحبا", "👩‍👩‍👧‍👦", "｜", "```python", "\r\n", "\t"):
        assert sample in text
    assert any(text_of(m) == "" and m["role"] == "assistant" and not m.get("tool_calls") for m in msgs)
    path = tmp_path / "builtin.jsonl"
    write_jsonl(path)
    assert [c.to_json() for c in load_conversations(path)] == [c.to_json() for c in convs]


def test_generation_prompt_lengths():
    c = conv(("system", "s"), ("user", "u"), ("assistant", "a"), ("user", "u2"), ("assistant", "a2"))
    assert generation_prompt_lengths(c.messages) == [2, 4]
    assert generation_prompt_lengths(c.messages[:4]) == [2, 4]
    assert generation_prompt_lengths(c.messages[:2]) == [2]


# -- the engine ------------------------------------------------------------------------------------
def test_first_difference(llama):
    a = llama.encode("Hello there, world")
    assert first_difference(a, list(a), llama) is None
    b = llama.encode("Hello there, moon")
    d = first_difference(a, b, llama)
    assert d.index == 3 and d.before == ("Hello", " there", ",")
    assert d.renderer_next[0][1] == " world" and d.template_next[0][1] == " moon"
    short = first_difference(a[:2], a, llama)
    assert short.index == 2 and short.renderer_next == () and "(end of sequence)" in short.describe()


class UpperFinalAnswer(TemplateDifference):
    """Declared by UpperAnswer: the template side's final answer in capitals."""

    description = "final answer in capitals"

    def applies(self, messages, tools, *, generation):
        return not generation and messages[-1]["role"] == "assistant"

    def template_output(self, text, messages, tools):
        head, sep, answer = text.rpartition("<|end_header_id|>\n\n")
        body, eot, rest = answer.partition("<|eot_id|>")
        return head + sep + body.upper() + eot + rest


class UpperAnswer(HFTemplateRenderer):
    """Writes the final assistant message in capitals, and declares it."""

    template_differences = (UpperFinalAnswer(),)

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        if messages and messages[-1]["role"] == "assistant":
            last, text = out[-1], text_of(messages[-1])
            out[-1] = RenderedMessage(last.header, last.body.replace(text, text.upper()), last.trailer)
        return out


class UpperAnswerUndeclared(UpperAnswer):
    template_differences = ()


class UpperAnswerAndHeader(UpperAnswer):
    """...and also changes the header the template's prompt ends with, which
    the declared transformation does not describe."""

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        if messages and messages[-1]["role"] == "assistant":
            out[-1] = RenderedMessage(out[-1].header.upper(), out[-1].body, out[-1].trailer)
        return out


class UpperAnswerAndTypo(UpperAnswer):
    """...and, in the same conversation, a one-token bug in the user's message."""

    def render_conversation(self, messages, tools):
        out = super().render_conversation(messages, tools)
        return [RenderedMessage(r.header, r.body.replace("hi<|eot_id|>", "hi!<|eot_id|>"), r.trailer) for r in out]


def test_statuses(llama):
    c = conv(("user", "hi"), ("assistant", "hello"))
    ok = check_renderer(HFTemplateRenderer(llama), [c])
    assert [x.status for x in ok.results[0].comparisons] == [MATCH, MATCH] and ok.ok

    documented = check_renderer(UpperAnswer(llama), [c])
    gen, sup = documented.results[0].comparisons
    assert (gen.status, sup.status) == (MATCH, DOCUMENTED) and documented.ok
    assert sup.detail == "final answer in capitals; the example continues the template's generation prompt token for token"

    report = check_renderer(UpperAnswerUndeclared(llama), [c])
    assert report.results[0].comparisons[1].status == MISMATCH and not report.ok
    assert "first difference at token" in report.format() and report.format().endswith("FAILED")
    with pytest.raises(AssertionError, match="'HEL'"):
        report.assert_ok()

    broken = check_renderer(UpperAnswerAndHeader(llama), [c])
    sup = broken.results[0].comparisons[1]
    assert sup.status == MISMATCH and "even with the documented difference(s) applied (final answer in capitals)" in sup.detail
    assert sup.difference.template_next[0][1] == "<|start_header_id|>" and sup.difference.renderer_next[0][1] == "<"


def test_a_documented_difference_excuses_nothing_else(llama):
    """The transformation is applied, then every token must match: a one-token
    bug elsewhere in a conversation the difference applies to still fails."""
    c = conv(("user", "hi"), ("assistant", "hello"))
    report = check_renderer(UpperAnswerAndTypo(llama), [c])
    gen, sup = report.results[0].comparisons
    assert (gen.status, sup.status) == (MISMATCH, MISMATCH) and not report.ok
    assert sup.difference.renderer_next[0][1] == "!" and "final answer in capitals" in sup.detail


class NoCapitalsFound(TemplateDifference):
    description = "expects a marker the template never writes"

    def template_output(self, text, messages, tools):
        if "<<marker>>" not in text:
            raise TemplateDifferenceError("no <<marker>> in the template's text")
        return text


class DeclaresTheWrongThing(UpperAnswerUndeclared):
    template_differences = (NoCapitalsFound(),)


class RaisesKeyError(HFTemplateRenderer):
    def render_conversation(self, messages, tools):
        raise KeyError("oops")


class DifferenceRaises(UpperAnswerUndeclared):
    class Broken(TemplateDifference):
        def applies(self, messages, tools, *, generation):
            raise ZeroDivisionError("bad difference")

    template_differences = (Broken(),)


def test_a_difference_that_does_not_fit_is_a_mismatch(llama):
    c = conv(("user", "hi"), ("assistant", "hello"))
    sup = check_renderer(DeclaresTheWrongThing(llama), [c]).results[0].comparisons[1]
    assert sup.status == MISMATCH
    assert "does not describe the template's text: no <<marker>> in the template's text" in sup.detail


def test_what_raises_is_an_error_not_a_skip(llama):
    c = conv(("user", "hi"), ("assistant", "hello"))
    report = check_renderer(RaisesKeyError(llama), [c])
    statuses = [x.status for x in report.results[0].comparisons]
    assert statuses == [ERROR, ERROR] and not report.ok and report.compared == 0
    assert report.results[0].comparisons[0].detail == "the renderer raised KeyError: 'oops'"
    assert "FAIL" in report.format() and "1 error(s)" in report.format()
    bad = check_renderer(DifferenceRaises(llama), [c]).results[0].comparisons[1]
    assert bad.status == ERROR and "ZeroDivisionError: bad difference" in bad.detail
    # a template that fails to render (not its own raise_exception) is an error too
    broken = check_renderer(HFTemplateRenderer(llama), [c], template="{{ messages[0].missing.deeper }}")
    assert {x.status for x in broken.results[0].comparisons} == {ERROR} and not broken.ok


def test_a_template_that_does_not_parse_is_one_error(llama):
    with pytest.raises(CookbookError, match=r"^bad\.jinja: chat template does not parse: .* \(line 1\)$"):
        check_renderer(HFTemplateRenderer(llama), [conv(("user", "hi"))], template="{% if %}", template_source="bad.jinja")


def test_a_renderer_with_the_old_api_is_told_what_to_do(llama):
    class Old(HFTemplateRenderer):
        def template_difference(self, messages, tools, *, generation):
            return "anything"

    with pytest.raises(CookbookError, match="template_differences"):
        check_renderer(Old(llama), [conv(("user", "hi"))])


class NoThinking(HFTemplateRenderer):
    supports_thinking = False


def test_skips_and_nothing_compared(llama):
    thinking = parse_conversation({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "r"}]}, "t")
    report = check_renderer(NoThinking(llama), [thinking])
    gen, sup = report.results[0].comparisons
    assert (gen.status, sup.status) == (MATCH, SKIPPED) and sup.detail.startswith("renderer refuses:") and report.ok
    refused = parse_conversation({"messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}]}, "t")
    only_refused = check_renderer(NoThinking(llama), [refused])
    assert only_refused.compared == 0 and not only_refused.ok and "nothing was compared" in only_refused.format()
    template_only = check_renderer(HFTemplateRenderer(llama), [conv(("user", "hi"))], template="{{ raise_exception('no way') }}")
    assert template_only.results[0].comparisons[0].detail == "template refuses: no way"


def test_same_text_split_encoding_is_reported(load_only, shared_tokenizers):
    """DeepSeek's template on V3's tokenizer: `</think>A fox` tokenizes differently
    when the generation prompt's `</think>` is encoded apart from the answer."""
    deepseek = get_tokenizer(str(shared_tokenizers / "deepseek_v3"))
    c = conv(("user", "q"), ("assistant", "A fox"))
    report = check_renderer(HFTemplateRenderer(deepseek), [c])
    sup = report.results[0].comparisons[1]
    assert sup.status == DOCUMENTED and sup.detail.startswith("same text; the tokenizer merges across the boundary")
    assert report.ok


# -- the command ---------------------------------------------------------------------------------
def test_cli_check_passes(load_only, llama_dir):
    load_only()
    result = runner.invoke(app, ["renderers", "check", "llama3", "--tokenizer", llama_dir])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"renderer 'llama3' against the chat template of {llama_dir}" and lines[-1] == "OK"
    assert len([line for line in lines if line.startswith("ok ")]) == len(builtin_conversations()[0])


def test_cli_check_fails_on_a_wrong_template(load_only, llama_dir, llama, tmp_path):
    wrong = tmp_path / "wrong.jinja"
    wrong.write_text(llama.chat_template.replace("<|eot_id|>", "<|eom_id|>", 1), encoding="utf-8")
    assert wrong.read_text(encoding="utf-8") != llama.chat_template
    load_only()
    result = runner.invoke(app, ["renderers", "check", "hf_template", "-t", llama_dir, "--template", str(wrong)])
    assert result.exit_code == 1
    assert "first difference at token" in result.output and "'<|eom_id|>'" in result.output
    assert result.output.rstrip().endswith("FAILED")


def test_cli_check_json_and_conversation_file(load_only, llama_dir, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "Only a question"}]}) + "\n",
        encoding="utf-8",
    )
    load_only()
    result = runner.invoke(app, ["renderers", "check", "hf_template", "-t", llama_dir, "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["renderer"] == "hf_template"
    assert [c["name"] for c in report["conversations"]] == ["mine.jsonl:1", "mine.jsonl:2"]
    assert report["counts"] == {"generation": {"match": 2}, "supervised": {"match": 2}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "nowhere.jinja"], "template file 'nowhere.jinja' does not exist"),
        (["-c", "missing.jsonl"], "conversation file 'missing.jsonl' does not exist"),
    ],
)
def test_cli_check_errors(load_only, llama_dir, args, message):
    load_only()
    result = runner.invoke(app, ["renderers", "check", "hf_template", "-t", llama_dir, *args])
    assert result.exit_code == 1 and message in result.output


def test_cli_check_bad_conversation_line(load_only, llama_dir, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "ok"}]}\n{"messages": [{"role": "robot"}]}\n', encoding="utf-8")
    load_only()
    result = runner.invoke(app, ["renderers", "check", "hf_template", "-t", llama_dir, "-c", str(path)])
    assert result.exit_code == 1 and f"{path}:2" in result.output and "'role'" in result.output


# -- core knows no family plugin ----------------------------------------------------------------
FAMILY_MODULES = ("cookbook_qwen3", "cookbook_deepseek", "cookbook_gpt_oss", "cookbook_kimi")
FAMILY_RENDERERS = (
    "qwen3", "qwen3_disable_thinking", "qwen3_instruct", "deepseekv3", "deepseekv3_thinking",
    "gpt_oss_no_sysprompt", "gpt_oss_low_reasoning", "gpt_oss_medium_reasoning", "gpt_oss_high_reasoning", "kimi_k2",
)


def test_core_lists_no_family_names(load_only):
    from cookbook_cli.plugins import registry

    load_only()
    names = registry.renderers.names() + registry.models.names()
    assert not [n for n in names if re.search(r"qwen|deepseek|gpt|kimi", n, re.IGNORECASE)]


def test_core_source_does_not_import_or_name_the_plugins():
    package = Path(cookbook_cli.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for module in FAMILY_MODULES:
            if module in source:
                offenders.append(f"{path.name}: {module}")
        for name in FAMILY_RENDERERS:
            if re.search(rf"[\"']{name}[\"']", source):
                offenders.append(f"{path.name}: {name!r}")
    assert not offenders
