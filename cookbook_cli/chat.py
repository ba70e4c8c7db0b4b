"""`cookbook chat`: talk to a model or checkpoint in the terminal.

A `ChatSession` keeps the conversation (an optional system message, then
user and assistant turns) and asks the message completer for each reply.
`run_repl` reads one message per line and understands a few commands:

    /reset          forget the conversation (the system message stays)
    /system TEXT    set the system message (and start over); `/system` alone removes it
    /exit, /quit    leave (so does end of input)
    /help           list the commands

On a terminal the reply appears token by token (rich), thinking content is
shown dimmed and tool calls are shown as calls; with stdin not a terminal
(a pipe, a test) every reply is one plain `assistant: ...` line, so a
conversation can be scripted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cookbook_cli.types import Message, text_of, thinking_of

if TYPE_CHECKING:
    from cookbook_cli.completers import Completion, RendererMessageCompleter

HELP = "commands: /reset (start over), /system TEXT (set the system message), /exit"


class ChatSession:
    def __init__(self, completer: RendererMessageCompleter, system: str | None = None) -> None:
        self.completer = completer
        self.system = system
        self.history: list[Message] = []

    def messages(self) -> list[Message]:
        head: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.history]

    def reset(self) -> None:
        self.history = []

    def set_system(self, text: str | None) -> None:
        self.system = text or None
        self.reset()

    async def reply_async(self, text: str) -> Completion:
        self.history.append({"role": "user", "content": text})
        try:
            (completion,) = await self.completer(self.messages(), None, 1)
        except BaseException:
            self.history.pop()  # a failed turn leaves the conversation as it was
            raise
        self.history.append(completion.message)
        return completion

    def reply(self, text: str) -> Completion:
        return asyncio.run(self.reply_async(text))


def _call_text(call: Any) -> str:
    return f"{call.name}({call.arguments})"


class PlainView:
    """One line per event: for pipes and tests."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write

    def prompt(self) -> None:
        pass

    def note(self, text: str) -> None:
        self.write(f"({text})")

    def show(self, completion: Completion, tokenizer: Any) -> None:
        m = completion.message
        thinking = thinking_of(m)
        if thinking:
            self.write(f"[thinking] {thinking.strip()}")
        self.write(f"assistant: {text_of(m)}")
        for call in m.get("tool_calls") or []:
            self.write(f"[tool call] {_call_text(call)}")
        for bad in m.get("unparsed_tool_calls") or []:
            self.write(f"[unparsed tool call] {bad.error}")
        if not completion.ok:
            self.write(f"({completion.termination})")


class RichView:
    """A terminal view: the reply appears token by token, thinking dimmed, tool calls as calls."""

    def __init__(self, console: Any = None, token_delay: float = 0.01) -> None:
        from rich.console import Console

        self.console = console or Console(highlight=False)
        self.token_delay = token_delay

    def prompt(self) -> None:
        self.console.print("[bold green]you>[/] ", end="")

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/]")

    def show(self, completion: Completion, tokenizer: Any) -> None:
        from rich.live import Live
        from rich.text import Text

        m = completion.message
        thinking = (thinking_of(m) or "").strip()
        answer = text_of(m)
        # Reveal the reply piece by piece, decoding growing prefixes of the sampled tokens.
        text = Text()
        shown = ""
        with Live(text, console=self.console, refresh_per_second=30, transient=True) as live:
            for i in range(1, len(completion.tokens) + 1):
                piece = tokenizer.decode(completion.tokens[:i])
                if len(piece) > len(shown):
                    text.append(piece[len(shown):])
                    shown = piece
                    live.update(text)
                    time.sleep(self.token_delay)
        out = Text()
        if thinking:
            out.append(thinking + "\n", style="dim italic")
        out.append("assistant> ", style="bold blue")
        out.append(answer)
        self.console.print(out)
        for call in m.get("tool_calls") or []:
            self.console.print(Text("  → call " + _call_text(call), style="cyan"))
        for bad in m.get("unparsed_tool_calls") or []:
            self.console.print(Text(f"  ✗ tool call that does not parse ({bad.error}): {bad.raw_text}", style="yellow"))
        if not completion.ok:
            self.console.print(Text(f"  ({completion.termination})", style="dim"))


def run_repl(session: ChatSession, lines: Iterable[str], view: Any, tokenizer: Any) -> int:
    """Chat until /exit or the end of `lines`; returns the number of replies."""
    replies = 0
    view.prompt()
    for raw in lines:
        line = raw.rstrip("\n")
        command, _, rest = line.strip().partition(" ")
        if not line.strip():
            pass
        elif command in ("/exit", "/quit"):
            break
        elif command == "/reset":
            session.reset()
            view.note("conversation reset")
        elif command == "/system":
            session.set_system(rest.strip() or None)
            view.note(f"system message set: {rest.strip()}" if rest.strip() else "system message removed")
        elif command == "/help":
            view.note(HELP)
        elif command.startswith("/") and " " not in command[1:] and command[1:].isalpha():
            view.note(f"unknown command {command}; {HELP}")
        else:
            view.show(session.reply(line), tokenizer)
            replies += 1
        view.prompt()
    return replies
