"""DeepSeek V3.1 chat formats: `deepseekv3` (non-thinking, the default) and
`deepseekv3_thinking`.

    <｜begin▁of▁sentence｜>{system}<｜User｜>{question}<｜Assistant｜></think>{answer}<｜end▁of▁sentence｜>

The markers use DeepSeek's full-width bars and the "▁" separator
(`<｜User｜>`, not `<|User|>`). Exactly as the V3.1 chat template writes it:
- The BOS is written once; then the system messages' text, joined by a blank
  line, with no role marker. System messages must come first (the template
  moves any later one to the start, which no token-prefix rendering can do,
  so they are refused).
- A user message is `<｜User｜>` + text.
- An assistant message that follows a user message opens with
  `<｜Assistant｜></think>` (the closed think block says "answer directly");
  one that follows a tool result or another assistant message has no header
  at all: the model simply continues. Each ends with `<｜end▁of▁sentence｜>`.
  Its reasoning is not written (the template drops `reasoning_content`), and
  text holding `</think>` keeps only what follows it.
- Tool calls follow the text: `<｜tool▁calls▁begin｜>` then, per call,
  `<｜tool▁call▁begin｜>name<｜tool▁sep｜>arguments<｜tool▁call▁end｜>`, then
  `<｜tool▁calls▁end｜>`. Arguments are written verbatim, as the template does
  (after checking they are a JSON object), so calls round-trip byte for byte.
- A tool result is `<｜tool▁output▁begin｜>` + text + `<｜tool▁output▁end｜>`.
- Tool declarations use the V3.1 model card's "## Tools" section, appended to
  the system prompt (after a blank line when there is one), or written after
  the BOS when there is no system message.
- Generation prompt: after a user message `<｜Assistant｜></think>`
  (`deepseekv3`) or `<｜Assistant｜><think>` (`deepseekv3_thinking`); after a
  tool result or an assistant message nothing at all (the template adds
  nothing there in either mode: tool use is non-thinking).

`deepseekv3_thinking` writes every earlier answer as above, and the final
assistant message of a conversation, when it answers a user message, as the
model produces it after the thinking prompt:

    <｜Assistant｜><think>{reasoning}</think>{answer}<｜end▁of▁sentence｜>

Sampling stops at `<｜end▁of▁sentence｜>`. Parsing splits reasoning at
`</think>` (with or without the `<think>` the prompt already wrote; an empty
block counts as none) and tool calls out of the calls section; malformed
calls are kept with their error.

Tokenizers: with DeepSeek-V3.1's own tokenizer `<think>`/`</think>` are single
tokens; in DeepSeek-V3's tokenizer.json they are plain text (`</think>` is
"</", "think", ">"), and text right after them can merge with the ">". The
renderer encodes them as text either way, and places the non-thinking
`</think>` by tokenizer: in the assistant header (not trained) when it is one
token, at the start of the body (so it is encoded together with the answer,
exactly as the template's text is) when it is not. On V3's tokenizer the
generation prompt is then a token prefix of the training example only when
the tokenizer does not merge the ">" of `</think>` with the answer's first
characters (it does for "A fox", "(a)" or "<root>", not for "**" or "```"):
the template's own prompt and its training text disagree there too.

Where this differs from the V3.1 chat template (each is tested, and
`cookbook renderers check` reports it as documented):
- Tool declarations (`ModelCardToolSection`): the V3.1 template writes none
  (the model card has the caller put them in the system prompt); the renderer
  writes the model card's section. The template is compared on the same
  conversation with the card's section, transcribed in `model_card.py` apart
  from this module's code, put in its system message.
- `deepseekv3_thinking`, final answer to a user message
  (`ThinkingModeAnswer`): the template writes every past answer as
  `</think>answer` and drops reasoning, so it cannot express a thinking-mode
  answer; it is compared with the template's text in which that answer's
  `<｜Assistant｜></think>` becomes the thinking prompt `<｜Assistant｜><think>`
  followed by the reasoning and `</think>`, and must continue the template's
  own thinking prompt token for token.
- Several leading system messages, when the next one starts with a line
  break: the blank line joining them ends the earlier message, and each is
  encoded on its own, so the tokenizer cannot merge the blank line with the
  break (the text is the template's; reported as a boundary difference).
"""

from __future__ import annotations

import json
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers.base import RenderedMessage, Renderer
from cookbook_cli.renderers.differences import TemplateDifference, TemplateDifferenceError
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.renderers.thinking import ThinkingTags
from cookbook_cli.renderers.tool_calls import NamedArgumentsToolCalls
from cookbook_cli.types import Message, ToolSpec, text_of, thinking_of
from cookbook_deepseek.model_card import card_tool_description

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
TOOL_OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
TOOL_OUTPUT_END = "<｜tool▁output▁end｜>"
THINK = ThinkingTags("<think>", "</think>", "", "", "")
TOOL_CALLS = NamedArgumentsToolCalls(
    "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
)

TOOLS_HEAD = "## Tools\nYou have access to the following tools:\n\n"
TOOLS_TAIL = (
    "\n\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments"
    "<｜tool▁call▁end｜>{{additional_tool_calls}}<｜tool▁calls▁end｜>\n\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces"
)


def tool_description(tools: list[ToolSpec]) -> str:
    """The V3.1 model card's tool section (parameters as `json.dumps` writes them)."""
    blocks = [f"### {t.name}\nDescription: {t.description}\n\nParameters: {json.dumps(t.parameters)}" for t in tools]
    return TOOLS_HEAD + "\n\n".join(blocks) + TOOLS_TAIL


def leading_systems(messages: list[Message]) -> int:
    """How many system messages open the conversation."""
    n = 0
    while n < len(messages) and messages[n]["role"] == "system":
        n += 1
    return n


class ModelCardToolSection(TemplateDifference):
    """The V3.1 template writes no tool declarations; the renderer writes the
    model card's tool description after the system prompt (and a blank line),
    or right after the BOS when there is none. Applied: the template is given
    the card's description (`model_card.py`, not the renderer's code) in its
    system prompt, as the card instructs."""

    description = (
        "the template writes no tool declarations; this renderer writes the model card's tool section "
        "at the end of the system prompt"
    )

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        return bool(tools)

    def template_input(
        self, messages: list[Message], tools: list[ToolSpec] | None
    ) -> tuple[list[Message], list[ToolSpec] | None]:
        messages = list(messages)
        systems = leading_systems(messages)
        joined = "\n\n".join(text_of(m) for m in messages[:systems])
        section = ("\n\n" if joined else "") + card_tool_description(tools or [])
        if systems:
            messages[systems - 1] = {**messages[systems - 1], "content": text_of(messages[systems - 1]) + section}
        else:
            messages.insert(0, {"role": "system", "content": section})
        return messages, None


class ThinkingModeAnswer(TemplateDifference):
    """The V3.1 template writes every answer as `<｜Assistant｜></think>answer`
    and drops its reasoning, so it cannot write a thinking-mode answer; the
    renderer writes a final answer to a user message as the model produces it
    after the template's own thinking prompt (`<｜Assistant｜><think>`).
    Applied: the final answer's `<｜Assistant｜></think>` in the template's text
    becomes `<｜Assistant｜><think>` + the message's reasoning + `</think>`."""

    description = (
        "the V3.1 template writes every answer as `</think>answer` without its reasoning, so it cannot express "
        "a thinking-mode answer; this renderer writes it as the model produces it: `reasoning</think>answer`"
    )

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        return not generation and len(messages) >= 2 and messages[-1]["role"] == "assistant" and messages[-2]["role"] == "user"

    def template_output(self, text: str, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        opener = ASSISTANT + THINK.close
        at = text.rfind(opener)
        if at < 0 or ASSISTANT in text[at + len(opener) :]:
            raise TemplateDifferenceError(f"the template's final answer does not open with {opener!r}")
        reasoning = thinking_of(messages[-1]) or ""
        return text[:at] + ASSISTANT + THINK.open + reasoning + THINK.close + text[at + len(opener) :]


class DeepSeekV3Renderer(Renderer):
    """DeepSeek V3.1, non-thinking (see the module docstring for the format)."""

    supports_tools = True
    supports_thinking = True  # accepted, and dropped as the template drops it
    template_tool_arguments = "string"
    thinking = False
    template_kwargs = {"thinking": False}
    template_differences: tuple[TemplateDifference, ...] = (ModelCardToolSection(),)

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        super().__init__(tokenizer)
        self._eos = tokenizer.require_id(EOS)
        self._close_is_token = len(tokenizer.encode(THINK.close)) == 1

    def bos_text(self) -> str:
        return BOS

    def check_messages(self, messages: list[Message], tools: list[ToolSpec] | None) -> None:
        super().check_messages(messages, tools)
        first = leading_systems(messages)
        for i, m in enumerate(messages[first:], start=first):
            if m["role"] == "system":
                raise CookbookError(
                    f"message {i} is a system message after the conversation started; DeepSeek V3.1's template moves "
                    "every system message to the very start, so put system messages first"
                )

    def preamble(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        return tool_description(tools) if tools and leading_systems(messages) == 0 else ""

    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        systems = leading_systems(messages)
        system_text = ""
        out: list[RenderedMessage] = []
        for i, m in enumerate(messages):
            role = m["role"]
            if role == "system":
                # The blank line joining system messages ends the earlier one: a sentence's final
                # punctuation and the newlines after it are one pre-token, as in the template's text.
                body = text_of(m)
                system_text += body
                if i < systems - 1:
                    body += "\n\n"
                    system_text += "\n\n"
                elif tools:
                    body += ("\n\n" if system_text else "") + tool_description(tools)
                out.append(RenderedMessage("", body))
            elif role == "user":
                out.append(RenderedMessage(USER, text_of(m)))
            elif role == "tool":
                out.append(RenderedMessage(TOOL_OUTPUT_BEGIN, text_of(m) + TOOL_OUTPUT_END))
            elif role == "assistant":
                out.append(self._assistant(messages, i))
            else:
                raise CookbookError(f"renderer {self.name or 'deepseekv3'!r} cannot write a message with role {role!r}")
        return out

    def _assistant(self, messages: list[Message], i: int) -> RenderedMessage:
        m = messages[i]
        prev = messages[i - 1]["role"] if i > 0 else None
        text = text_of(m)
        calls = m.get("tool_calls") or []
        if self.thinking and i == len(messages) - 1 and prev == "user":
            # the produced turn, written as the model writes it after `<｜Assistant｜><think>`
            body = (thinking_of(m) or "") + THINK.close + TOOL_CALLS.append_calls(text, calls) + EOS
            return RenderedMessage(ASSISTANT + THINK.open, body)
        if not calls and prev != "tool" and THINK.close in text:
            text = text.split(THINK.close, 1)[1]  # the template keeps only what follows </think>
        body = TOOL_CALLS.append_calls(text, calls) + EOS
        if prev != "user":
            return RenderedMessage("", body)
        if self._close_is_token:
            return RenderedMessage(ASSISTANT + THINK.close, body)
        return RenderedMessage(ASSISTANT, THINK.close + body)

    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        if role == "user":
            return USER
        if role != "assistant":
            raise CookbookError(f"renderer {self.name or 'deepseekv3'!r} can prompt for 'assistant' or 'user', not {role!r}")
        if messages and messages[-1]["role"] == "user":
            return ASSISTANT + (THINK.open if self.thinking else THINK.close)
        return ""

    def stop_token_ids(self) -> list[int]:
        return [self._eos]

    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        text, term = self.split_response(tokens)
        return self.parse_text(text, THINK, TOOL_CALLS), term

class DeepSeekV3ThinkingRenderer(DeepSeekV3Renderer):
    """DeepSeek V3.1 in thinking mode (the template's `thinking=True`)."""

    thinking = True
    template_kwargs = {"thinking": True}
    template_differences = (ModelCardToolSection(), ThinkingModeAnswer())
