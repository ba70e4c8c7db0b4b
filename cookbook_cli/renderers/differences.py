"""Documented differences from a model's chat template, stated as transformations.

A renderer that deliberately writes something its model's Jinja template does
not (keeps whitespace the template strips, writes every tool call where the
template writes only the first, ...) declares each such difference as a
`TemplateDifference` in `Renderer.template_differences`. A difference says
what the template would have to be given, or how its output would have to be
changed, to write what the renderer writes:

- `template_input(messages, tools)`: the conversation the template is rendered
  on instead (e.g. one tool call per message);
- `template_output(text, messages, tools)`: the template's rendered text,
  changed before it is tokenised (e.g. content put back unstripped).

`cookbook renderers check` applies every difference that `applies` to a
conversation to the *template side*, and then requires exact token equality
with the renderer (or the same text split only at the renderer's piece
boundaries). So a difference excuses exactly what it describes: an unrelated
bug inside the same conversation still fails.

Keep a transformation honest: it may read the conversation and the template's
text, never the renderer's output or the helpers that produce it. A
transformation that finds the template's text not as it expects raises
`TemplateDifferenceError`, which the check reports as a mismatch.
"""

from __future__ import annotations

from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.types import Message, ToolSpec, make_content, text_of, thinking_of


class TemplateDifferenceError(CookbookError):
    """A declared difference does not describe the template's text for this conversation."""


class TemplateDifference:
    """One documented difference. Subclass it and override what you need;
    the defaults change nothing. `description` is what the report shows."""

    description: str = ""

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        """Whether this difference concerns the conversation (its generation
        prompt when `generation`, else the whole conversation as a training example)."""
        return True

    def template_input(
        self, messages: list[Message], tools: list[ToolSpec] | None
    ) -> tuple[list[Message], list[ToolSpec] | None]:
        """The conversation to render the template on instead of `messages`, `tools`."""
        return messages, tools

    def template_output(self, text: str, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        """The template's rendered `text`, changed; `messages` and `tools` are
        the conversation under check (before any `template_input`)."""
        return text


def apply_differences(
    differences: list[TemplateDifference],
    render: Any,
    messages: list[Message],
    tools: list[ToolSpec] | None,
) -> str:
    """The template's text for the conversation with `differences` applied:
    their inputs in order, the template rendered by `render(messages, tools)`,
    then their outputs in reverse order (the first declared is innermost)."""
    m, t = messages, tools
    for d in differences:
        m, t = d.template_input(m, t)
    text = render(m, t)
    for d in reversed(differences):
        text = d.template_output(text, messages, tools)
    return text


# -- a difference many formats share -------------------------------------------------------
def _placeholder(i: int) -> str:
    # private-use characters: no template trims, escapes or splits them
    return f"\ue000{i}\ue001"


class ContentKeptVerbatim(TemplateDifference):
    """The template strips whitespace around message content (`| trim`); the
    renderer keeps content byte for byte. Applied: each whitespace-edged
    content is given to the template as a placeholder, and the original
    content is put where the template wrote that placeholder (exactly once)."""

    description = "the template strips whitespace around message content; this renderer keeps it"

    @staticmethod
    def _edged(m: Message) -> bool:
        text = text_of(m)
        return text != text.strip()

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        return any(self._edged(m) for m in messages)

    def template_input(
        self, messages: list[Message], tools: list[ToolSpec] | None
    ) -> tuple[list[Message], list[ToolSpec] | None]:
        out: list[Message] = []
        for i, m in enumerate(messages):
            if self._edged(m):
                m = {**m, "content": make_content(_placeholder(i), thinking_of(m))}  # type: ignore[typeddict-item]
            out.append(m)
        return out, tools

    def template_output(self, text: str, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        for i, m in enumerate(messages):
            if not self._edged(m):
                continue
            mark = _placeholder(i)
            if text.count(mark) != 1:
                raise TemplateDifferenceError(
                    f"the template wrote message {i}'s content {text.count(mark)} times, not once"
                )
            text = text.replace(mark, text_of(m))
        return text
