"""`cookbook chat`: an interactive conversation with a model or checkpoint."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import typer

from cookbook_cli.cli.model_options import CHECKPOINT, ENGINE, MODEL, RENDERER, RUN


def _terminal_lines() -> Iterator[str]:
    while True:
        try:
            yield input()
        except EOFError:
            return


def chat(
    model: str = MODEL,
    run: str = RUN,
    checkpoint: str = CHECKPOINT,
    engine: str = ENGINE,
    renderer: str = RENDERER,
    system: str = typer.Option(None, "--system", "-s", help="System message to start with."),
    temperature: float = typer.Option(0.7, "--temperature", "-t", help="Sampling temperature (0: greedy)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Most tokens per reply."),
    seed: int = typer.Option(None, "--seed", help="Seed, for replies that repeat."),
) -> None:
    """Chat with a model or a run's checkpoint in the terminal.

    Commands: /reset, /system TEXT, /exit. Thinking content is shown dimmed
    and tool calls as calls. With stdin not a terminal, each line is one
    message and each reply one `assistant: ...` line."""
    from cookbook_cli.chat import ChatSession, PlainView, RichView, run_repl
    from cookbook_cli.cli.model_options import model_source
    from cookbook_cli.completers import RendererMessageCompleter, SamplingSettings
    from cookbook_cli.sources import open_sampler, renderer_for

    source = model_source(model, run, checkpoint, engine, renderer)
    settings = SamplingSettings(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    settings.check()
    render = renderer_for(source)
    interactive = sys.stdin.isatty()
    view = RichView() if interactive else PlainView(typer.echo)
    view.note(f"chatting with {source.describe()}, renderer {source.renderer}" + ("; /help for commands" if interactive else ""))
    with open_sampler(source) as client:
        session = ChatSession(RendererMessageCompleter.over(render, client, settings), system)
        try:
            run_repl(session, _terminal_lines() if interactive else _piped_lines(), view, render.tokenizer)
        except KeyboardInterrupt:
            view.note("bye")


def _piped_lines() -> Iterator[str]:
    """Standard input's lines through the one user-file reader (bytes that are not UTF-8 are one error line)."""
    from cookbook_cli.user_files import check_text, iter_lines

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream put in place of stdin (an embedding program)
        yield from (check_text(line, "standard input") for line in sys.stdin)
        return
    for _, where, line in iter_lines(stream, "standard input", "input"):
        yield check_text(line, where)
