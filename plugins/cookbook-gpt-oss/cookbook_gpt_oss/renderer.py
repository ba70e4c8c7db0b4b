"""gpt-oss chat format (OpenAI Harmony), as gpt-oss's chat template writes it.

    <|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.
    Knowledge cutoff: 2024-06
    Current date: 2025-08-05

    Reasoning: medium

    # Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|><|start|>developer<|message|># Instructions

    {system message}

    <|end|><|start|>user<|message|>What is 2+2?<|end|><|start|>assistant<|channel|>analysis<|message|>{thinking}<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>

No newlines between messages. Renderers:
- `gpt_oss_low_reasoning`, `gpt_oss_medium_reasoning`, `gpt_oss_high_reasoning`:
  the system message above with that reasoning effort, and the date the
  renderer was made (`current_date`, fixed for its lifetime so a run's
  tokens do not change at midnight).
- `gpt_oss_no_sysprompt`: no system message at all (the model then runs with
  its defaults). The template always writes one, so it is compared with the
  template's output minus that message.

The conversation, as the template writes it:
- A system message (only first; any other is refused, the template drops it)
  becomes the developer message `# Instructions\\n\\n{text}\\n\\n`. Tool
  declarations follow it in the same message, as `# Tools\\n\\n## functions\\n\\n
  namespace functions {...}` (TypeScript-like, see `typescript.py`); with
  tools the system message also says "Calls to these tools must go to the
  commentary channel: 'functions'.".
- User: `<|start|>user<|message|>{text}<|end|>`.
- Assistant, the conversation's final message (what is trained): its thinking
  in the analysis channel, then `<|start|>assistant<|channel|>final<|message|>
  {text}<|return|>`. Earlier assistant messages are written
  `<|start|>assistant<|channel|>final<|message|>{text}<|end|>` without
  thinking (chain of thought is dropped from history); so is the final one
  in a generation prompt.
- Assistant with tool calls: its thinking (or, when it has no thinking, its
  text) in the analysis channel, kept only while no later assistant message
  answers without a tool call; then per call `<|start|>assistant
  to=functions.{name}<|channel|>commentary json<|message|>{arguments}<|call|>`.
- Tool result: `<|start|>functions.{name} to=assistant<|channel|>commentary
  <|message|>{text as a JSON string}<|end|>`, the name being the call it
  answers (by `tool_call_id`, else in order; else the message's `name`).
- Generation prompt: `<|start|>assistant`.

Sampling stops at `<|return|>` (an answer) or `<|call|>` (a tool call).
Parsing reads the Harmony messages of the response: analysis → thinking,
final → text, commentary to `functions.X` → a tool call (arguments must be a
JSON object; otherwise kept with the error), commentary without a recipient
(a preamble) → text. Both `to=` placements and `<|constrain|>json` parse.

Where this differs from the chat template (each is tested; `cookbook
renderers check` reports them as documented):
- `gpt_oss_no_sysprompt` omits the system message the template always writes.
- An assistant message with both thinking and text and tool calls: the
  template refuses it; the renderer writes the thinking in the analysis
  channel and the text as a commentary preamble.
- More than one tool call in a message: the template writes only the first
  (and names every following tool result after it); the renderer writes each
  call as its own commentary message, as the template writes one-call messages
  in a row (`OneCallPerMessage`), and names each result after the call it
  answers (`ToolResultsNamedByCall`).
What does not round-trip through `parse_response`: the text of a tool-call
message without thinking comes back as thinking (the template writes it to
the analysis channel), and a message with several calls ends at the first
`<|call|>` (a model samples one call at a time).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers.base import RenderedMessage, Renderer
from cookbook_cli.renderers.differences import TemplateDifference, TemplateDifferenceError
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.renderers.tool_calls import canonical_arguments, parse_arguments
from cookbook_cli.types import (
    Message,
    ToolCall,
    ToolSpec,
    UnparsedToolCall,
    make_content,
    text_of,
    thinking_of,
)
from cookbook_gpt_oss.typescript import tool_namespace

START, END, MESSAGE, CHANNEL = "<|start|>", "<|end|>", "<|message|>", "<|channel|>"
RETURN, CALL, CONSTRAIN = "<|return|>", "<|call|>", "<|constrain|>"
MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
CHANNELS_LINE = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
TOOLS_ROUTING = "\nCalls to these tools must go to the commentary channel: 'functions'."

_RECIPIENT = re.compile(r"to=([^\s<]+)")
_CHANNEL = re.compile(r"<\|channel\|>\s*([^\s<]+)")


def system_message(reasoning_effort: str, current_date: str, tools: bool) -> str:
    return (
        f"{START}system{MESSAGE}{MODEL_IDENTITY}\nKnowledge cutoff: 2024-06\nCurrent date: {current_date}\n\n"
        f"Reasoning: {reasoning_effort}\n\n{CHANNELS_LINE}" + (TOOLS_ROUTING if tools else "") + END
    )


def developer_text(instructions: str, tools: list[ToolSpec] | None) -> str:
    """The developer message's content (empty when there is nothing to say)."""
    out = f"# Instructions\n\n{instructions}\n\n" if instructions else ""
    if tools:
        out += "# Tools\n\n" + tool_namespace(tools)
    return out


def call_message(call: ToolCall) -> str:
    """One call after `<|start|>assistant`, as the template writes it."""
    return f" to=functions.{call.name}{CHANNEL}commentary json{MESSAGE}{canonical_arguments(call)}{CALL}"


class OneCallPerMessage(TemplateDifference):
    """The template writes only the first tool call of a message; the renderer
    writes every call as its own commentary message. Applied: the template gets
    each call in an assistant message of its own (the first keeps the
    message's text and thinking), which it writes one after the other."""

    description = "the template writes only a message's first tool call; this renderer writes each call as its own message"

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        return any(len(m.get("tool_calls") or []) > 1 for m in messages)

    def template_input(
        self, messages: list[Message], tools: list[ToolSpec] | None
    ) -> tuple[list[Message], list[ToolSpec] | None]:
        out: list[Message] = []
        for m in messages:
            calls = m.get("tool_calls") or []
            if len(calls) < 2:
                out.append(m)
                continue
            out.append({**m, "tool_calls": calls[:1]})
            out.extend({"role": "assistant", "content": "", "tool_calls": [c]} for c in calls[1:])
        return out, tools


class ToolResultsNamedByCall(TemplateDifference):
    """The template names every tool result after the latest tool call; the
    renderer after the call it answers (the call with its `tool_call_id`, else
    the call at its position among the results). Applied: each result's name
    in the template's text is replaced by the name of the call it answers."""

    description = "the template names each tool result after the latest call; this renderer after the call it answers"
    _RESULT = re.compile(r"<\|start\|>functions\.([^\s<]+) to=assistant<\|channel\|>commentary<\|message\|>")

    @staticmethod
    def _answered(messages: list[Message]) -> list[str | None]:
        """For each tool result in order, the name of the call it answers (None: no rule picks one)."""
        names: list[str | None] = []
        calls: list[ToolCall] = []
        position = 0
        for m in messages:
            if m["role"] == "assistant":
                calls, position = list(m.get("tool_calls") or []), 0
            elif m["role"] == "tool":
                by_id = [c.name for c in calls if c.id is not None and c.id == m.get("tool_call_id")]
                names.append(by_id[0] if by_id else calls[position].name if position < len(calls) else None)
                position += 1
        return names

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        return any(len({c.name for c in m.get("tool_calls") or []}) > 1 for m in messages)

    def template_output(self, text: str, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        names = self._answered(messages)
        found = list(self._RESULT.finditer(text))
        if len(found) != len(names):
            raise TemplateDifferenceError(f"the template wrote {len(found)} tool results for {len(names)} tool messages")
        out, last = [], 0
        for match, name in zip(found, names):
            out.append(text[last : match.start(1)] + (name or match.group(1)))
            last = match.end(1)
        return "".join(out) + text[last:]


class GptOssRenderer(Renderer):
    """Harmony format; `reasoning_effort=None` is `gpt_oss_no_sysprompt`."""

    supports_tools = True
    supports_thinking = True
    template_thinking_field = "thinking"
    template_differences = (OneCallPerMessage(), ToolResultsNamedByCall())

    def __init__(self, tokenizer, reasoning_effort: str | None = "medium", current_date: str | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(tokenizer)
        if reasoning_effort not in (None, "low", "medium", "high"):
            raise CookbookError(f"gpt-oss reasoning effort must be low, medium or high, not {reasoning_effort!r}")
        self.reasoning_effort = reasoning_effort
        self.current_date = current_date or date.today().isoformat()
        self._return = tokenizer.require_id(RETURN)
        self._call = tokenizer.require_id(CALL)
        day = date.fromisoformat(self.current_date)
        self.template_kwargs = {
            "reasoning_effort": reasoning_effort or "medium",
            "strftime_now": day.strftime,  # the template's clock reads the renderer's date
        }

    # -- format ------------------------------------------------------------------
    def check_messages(self, messages: list[Message], tools: list[ToolSpec] | None) -> None:
        super().check_messages(messages, tools)
        for i, m in enumerate(messages):
            if m["role"] == "system" and i > 0:
                raise CookbookError(
                    f"message {i} is a system message that is not first; gpt-oss's template turns only the first "
                    "message into the developer message (and drops any other), so put it first"
                )

    def preamble(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        out = system_message(self.reasoning_effort, self.current_date, bool(tools)) if self.reasoning_effort else ""
        if tools and not (messages and messages[0]["role"] == "system"):
            out += f"{START}developer{MESSAGE}{developer_text('', tools)}{END}"
        return out

    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        return self._render(messages, tools, history=False)

    def render_history(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        return self._render(messages, tools, history=True)

    def _render(self, messages: list[Message], tools: list[ToolSpec] | None, history: bool) -> list[RenderedMessage]:
        out: list[RenderedMessage] = []
        for i, m in enumerate(messages):
            role = m["role"]
            if role == "system":
                content = developer_text(text_of(m), tools)
                out.append(RenderedMessage(f"{START}developer{MESSAGE}", content + END) if content else RenderedMessage("", ""))
            elif role == "user":
                out.append(RenderedMessage(f"{START}user{MESSAGE}", text_of(m) + END))
            elif role == "tool":
                header = f"{START}functions.{self._tool_name(messages, i)} to=assistant{CHANNEL}commentary{MESSAGE}"
                out.append(RenderedMessage(header, json.dumps(text_of(m), ensure_ascii=False) + END))
            elif role == "assistant":
                out.append(RenderedMessage(f"{START}assistant", self._assistant_body(messages, i, history)))
            else:
                raise CookbookError(f"renderer {self.name or 'gpt_oss'!r} cannot write a message with role {role!r}")
        return out

    def _assistant_body(self, messages: list[Message], i: int, history: bool) -> str:
        m = messages[i]
        text, thinking = text_of(m), thinking_of(m)
        calls = m.get("tool_calls") or []
        if calls:
            answered_later = any(
                later["role"] == "assistant" and not later.get("tool_calls") for later in messages[i + 1 :]
            )
            body = ""
            if not answered_later:
                analysis = thinking if thinking else text
                if analysis:
                    body += f"{CHANNEL}analysis{MESSAGE}{analysis}{END}{START}assistant"
                if thinking and text:  # beyond the template, which refuses both
                    body += f"{CHANNEL}commentary{MESSAGE}{text}{END}{START}assistant"
            return body + f"{START}assistant".join(call_message(c) for c in calls)
        if i == len(messages) - 1 and not history:
            analysis = f"{CHANNEL}analysis{MESSAGE}{thinking}{END}{START}assistant" if thinking is not None else ""
            return analysis + f"{CHANNEL}final{MESSAGE}{text}{RETURN}"
        return f"{CHANNEL}final{MESSAGE}{text}{END}"

    def _tool_name(self, messages: list[Message], i: int) -> str:
        """The function a tool result answers: among the calls of the closest
        earlier assistant message, by id, else by position among the results."""
        j = i - 1
        while j >= 0 and messages[j]["role"] == "tool":
            j -= 1
        calls = (messages[j].get("tool_calls") or []) if j >= 0 and messages[j]["role"] == "assistant" else []
        call_id = messages[i].get("tool_call_id")
        for c in calls:
            if call_id is not None and c.id == call_id:
                return c.name
        position = i - j - 1
        if calls and position < len(calls):
            return calls[position].name
        if messages[i].get("name"):
            return messages[i]["name"]
        raise CookbookError(
            f"message {i} is a tool result that answers no tool call of the assistant message before it, and has no "
            "'name'; gpt-oss writes the function's name on every tool result"
        )

    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        if role == "assistant":
            return f"{START}assistant"
        if role == "user":
            return f"{START}user{MESSAGE}"
        raise CookbookError(f"renderer {self.name or 'gpt_oss'!r} can prompt for 'assistant' or 'user', not {role!r}")

    def stop_token_ids(self) -> list[int]:
        return [self._return, self._call]

    # -- parsing -------------------------------------------------------------------
    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        text, term = self.split_response(tokens)
        return parse_harmony(text), term

    # -- parity with gpt-oss's chat template ----------------------------------------
    def template_text(
        self,
        template: str,
        messages: list[Message],
        tools: list[ToolSpec] | None,
        *,
        add_generation_prompt: bool,
        special_tokens: dict[str, str] | None = None,
    ) -> str:
        text = super().template_text(
            template, messages, tools, add_generation_prompt=add_generation_prompt, special_tokens=special_tokens
        )
        if self.reasoning_effort is None:
            # gpt_oss_no_sysprompt: the template's output minus the system message it always writes
            if text.startswith(f"{START}system{MESSAGE}"):
                text = text[text.index(END) + len(END) :]
        return text


def parse_harmony(text: str) -> Message:
    """The assistant message in sampled Harmony text (the text after the
    prompt's `<|start|>assistant`, up to the stop token)."""
    thinking: list[str] = []
    texts: list[str] = []
    calls: list[ToolCall] = []
    unparsed: list[UnparsedToolCall] = []
    for k, segment in enumerate(text.split(START)):
        if k > 0:
            if not segment.startswith("assistant"):
                texts.append(START + segment)  # not an assistant message: keep it visible
                continue
            segment = segment[len("assistant") :]
        if not segment:
            continue
        header, sep, body = segment.partition(MESSAGE)
        recipient = _RECIPIENT.search(header)
        if not sep:
            if recipient:
                unparsed.append(UnparsedToolCall(raw_text=segment, error=f"tool call without {MESSAGE}"))
            else:
                texts.append(segment)
            continue
        body = body[: -len(END)] if body.endswith(END) else body
        if END in body:  # a message that ended but was not followed by <|start|>
            body, _, rest = body.partition(END)
            if rest:
                texts.append(rest)
        channel_match = _CHANNEL.search(header)
        channel = channel_match.group(1) if channel_match else None
        if recipient and recipient.group(1).startswith("functions."):
            name = recipient.group(1)[len("functions.") :]
            try:
                calls.append(ToolCall(name=name, arguments=parse_arguments(body)))
            except ValueError as e:
                unparsed.append(UnparsedToolCall(raw_text=segment, error=str(e)))
        elif channel == "analysis":
            thinking.append(body)
        else:
            texts.append(body)
    message: Message = {
        "role": "assistant",
        "content": make_content("".join(texts), "".join(thinking) if thinking else None),
    }
    if calls:
        message["tool_calls"] = calls
    if unparsed:
        message["unparsed_tool_calls"] = unparsed
    return message
