"""`cookbook chat`: driven through stdin it answers, resets and exits; the
terminal view shows thinking dimmed and tool calls as calls."""

from __future__ import annotations

import io

import pytest
from typer.testing import CliRunner

from cookbook_cli.chat import ChatSession, PlainView, RichView, run_repl
from cookbook_cli.cli.main import app
from cookbook_cli.completers import RendererMessageCompleter, SamplingSettings


def test_chat_through_stdin_answers_resets_and_exits(lora_run):
    script = "hello\n/system Be brief.\nhow are you?\n/reset\nagain\n/exit\nthis is never sent\n"
    result = CliRunner().invoke(app, ["chat", "--run", str(lora_run), "--max-tokens", "4", "--seed", "1"], input=script)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "final-000002" in out.splitlines()[0]
    assert out.count("assistant: ") == 3  # the line after /exit is not answered
    assert "(system message set: Be brief.)" in out and "(conversation reset)" in out


def test_bad_source_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["chat", "--run", str(tmp_path)], input="hi\n")
    assert result.exit_code == 1 and "holds no cookbook run" in result.output and "Traceback" not in result.output


def _session(renderer, client, system=None):
    return ChatSession(RendererMessageCompleter.over(renderer, client, SamplingSettings(max_tokens=8)), system)


def test_history_reset_and_system(toy_renderer, scripted_client):
    tok = toy_renderer.tokenizer
    client = scripted_client(lambda prompt, i: (tok.encode(" ok\n\nUser:"), "stop"))
    session = _session(toy_renderer, client)
    lines = []
    run_repl(session, ["hi", "more", "/reset", "hi", "/system be kind", "hi", "/quit"], PlainView(lines.append), tok)
    prompts = [tok.decode(p) for p, _, _ in client.calls]
    assert prompts[0] == prompts[2]  # after /reset the conversation starts over
    assert "more" in prompts[1] and "ok" in prompts[1]  # the history holds the first exchange
    assert prompts[3].startswith("System: be kind") and prompts[3].endswith("User: hi\n\nAssistant:")
    assert lines.count("assistant: ok") == 4
    assert session.history == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]


def test_terminal_view_shows_thinking_dimmed_and_tool_calls(shared_tokenizers, scripted_client):
    pytest.importorskip("cookbook_qwen3")
    from cookbook_qwen3.renderer import Qwen3Renderer
    from rich.console import Console

    from cookbook_cli.tokenizers import get_tokenizer

    renderer = Qwen3Renderer(get_tokenizer(str(shared_tokenizers / "qwen3")))
    tok = renderer.tokenizer
    text = '<think>\nThe user wants weather.\n</think>\n\nLet me check.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>'
    client = scripted_client(lambda prompt, i: (tok.encode(text), "stop"))
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=100, record=True)
    run_repl(_session(renderer, client), ["weather in Oslo?"], RichView(console, token_delay=0), tok)
    plain = console.export_text(clear=False)
    assert "The user wants weather." in plain and "assistant> Let me check." in plain
    assert '→ call weather({"city": "Oslo"})' in plain
    styled = console.export_text(styles=True)
    assert "\x1b[2;3m" in styled or "\x1b[3;2m" in styled  # the thinking is dim italic
