"""Qwen3 chat formats: `qwen3`, `qwen3_disable_thinking`, `qwen3_instruct`.

All three write ChatML turns, one per message, a newline after each `<|im_end|>`:

    <|im_start|>system
    You are terse.<|im_end|>
    <|im_start|>user
    What is 2+2?<|im_end|>
    <|im_start|>assistant
    <think>
    Two plus two.
    </think>

    4<|im_end|>

Tools (as in Qwen3's template): declarations go in the system turn, after the
system message's text and a blank line (a system turn is written for them when
the conversation has no system message):

    # Tools

    You may call one or more functions to assist with the user query.

    You are provided with function signatures within <tools></tools> XML tags:
    <tools>
    {"type": "function", "function": {"name": ..., "description": ..., "parameters": ...}}
    </tools>

    For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
    <tool_call>
    {"name": <function-name>, "arguments": <args-json-object>}
    </tool_call>

An assistant message's calls follow its text (a newline between text and call,
and between calls), each `<tool_call>\\n{"name": "f", "arguments": {...}}\\n</tool_call>`.
Tool results go in a user turn, `\\n<tool_response>\\n...\\n</tool_response>`
each, consecutive results sharing one turn.

Thinking follows the template exactly: an assistant message after the last
real user message (a user message that is not a wrapped `<tool_response>`) is
"framed" when it is the conversation's last message or has reasoning: it
opens with `<think>\\n{reasoning stripped of newlines}\\n</think>\\n\\n`, even an
empty one, and its text loses leading newlines. Earlier assistant messages
are written without their reasoning. String content holding a
`<think>...</think>` block is split the way the template splits it.

- `qwen3` (thinking on, `enable_thinking` unset): the generation prompt ends
  `<|im_start|>assistant\\n`; the model writes the think block itself, so the
  block is part of the trained body.
- `qwen3_disable_thinking` (`enable_thinking=False`): the generation prompt
  ends `<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n`; a framed answer gets
  the same empty block in its header (weight 0), so the prompt is a token
  prefix of the training example. Refused (they cannot be both trained and
  prompted for): reasoning on a message the template would frame, and a final
  assistant turn in a conversation with no user message (the template writes
  no block there while the prompt always does).
- `qwen3_instruct` (Qwen3-*-Instruct-2507): no think blocks at all; thinking
  content is refused.

Sampling stops at `<|im_end|>`; a sampled `<|endoftext|>` also ends a response
(termination `eos`). Parsing returns the think block as thinking (an empty
block as none), the text, and `<tool_call>` blocks as tool calls (unparseable
ones kept with their error).

Where the tokens differ from Qwen3's chat template (each has a test, and
`cookbook renderers check` reports it as a documented difference):
- Assistant text that begins with a line break right after its header (such
  as "\\n\\nHi" on a turn that is not framed, or " \\nHi" after the
  disable-thinking block): the text is the template's, but the header is
  encoded on its own, which is what keeps a generation prompt a token prefix
  of the conversation, while the template's text tokenizes both together (the
  newlines merge). User, system and tool turns have no such boundary (their
  header stops before the newline), so they always match.
- `qwen3_instruct` against the original Qwen3 template: that template writes
  an empty think block on the final assistant turn, which 2507 Instruct
  models never see or produce; the renderer writes none. Generation prompts
  are identical; a training example is compared with the template's text
  with that empty block removed (`NoThinkBlockOnTheFinalAnswer`), token for token.
"""

from __future__ import annotations

from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers.base import RenderedMessage, StopTokenRenderer
from cookbook_cli.renderers.differences import TemplateDifference, TemplateDifferenceError
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.renderers.thinking import ThinkingTags
from cookbook_cli.renderers.tool_calls import JSONObjectToolCalls, tool_specs_json
from cookbook_cli.types import Message, ToolSpec, text_of, thinking_of

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
THINK = ThinkingTags("<think>", "</think>", "\n", "\n", "\n\n")
EMPTY_THINK = "<think>\n\n</think>\n\n"
TOOL_CALLS = JSONObjectToolCalls("<tool_call>", "</tool_call>", separator="\n")
TOOL_RESPONSE_OPEN = "<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>"

TOOLS_PROMPT_HEAD = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_PROMPT_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

def tools_prompt(tools: list[ToolSpec]) -> str:
    return TOOLS_PROMPT_HEAD + "".join("\n" + line for line in tool_specs_json(tools)) + TOOLS_PROMPT_TAIL


def last_query_index(messages: list[Message]) -> int:
    """Index of the last user message that is not a wrapped tool response
    (the template's `ns.last_query_index`); the last index when there is none."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            text = text_of(messages[i])
            if not (text.startswith(TOOL_RESPONSE_OPEN) and text.endswith(TOOL_RESPONSE_CLOSE)):
                return i
    return len(messages) - 1


def reasoning_and_content(message: Message) -> tuple[str, str]:
    """(reasoning, content) as the template reads them: the thinking part when
    there is one, else a `<think>...</think>` block inside string content."""
    text = text_of(message)
    thinking = thinking_of(message)
    if thinking is not None:
        return thinking, text
    if THINK.close in text:
        before, after = text.split(THINK.close)[0], text.split(THINK.close)[-1]
        return before.rstrip("\n").split(THINK.open)[-1].lstrip("\n"), after.lstrip("\n")
    return "", text


class Qwen3Renderer(StopTokenRenderer):
    """Qwen3 with thinking on (see the module docstring for the format)."""

    supports_tools = True
    supports_thinking = True
    #: Whether the generation prompt writes the empty think block (thinking off).
    disable_thinking = False
    #: Whether assistant turns are ever framed with a think block.
    frames_thinking = True
    stop_token = IM_END
    end_of_text = END_OF_TEXT

    # -- format ------------------------------------------------------------------
    def preamble(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        if tools and not (messages and messages[0]["role"] == "system"):
            return f"{IM_START}system\n{tools_prompt(tools)}{IM_END}\n"
        return ""

    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        last_query = last_query_index(messages)
        has_user = any(m["role"] == "user" for m in messages)
        out: list[RenderedMessage] = []
        for i, m in enumerate(messages):
            role = m["role"]
            if role == "system" and i == 0:
                body = "\n" + text_of(m) + ("\n\n" + tools_prompt(tools) if tools else "")
                out.append(RenderedMessage(f"{IM_START}system", body + IM_END, "\n"))
            elif role in ("system", "user"):
                out.append(RenderedMessage(f"{IM_START}{role}", "\n" + text_of(m) + IM_END, "\n"))
            elif role == "tool":
                first = i == 0 or messages[i - 1]["role"] != "tool"
                last = i == len(messages) - 1 or messages[i + 1]["role"] != "tool"
                body = f"\n{TOOL_RESPONSE_OPEN}\n{text_of(m)}\n{TOOL_RESPONSE_CLOSE}" + (IM_END if last else "")
                out.append(RenderedMessage(f"{IM_START}user" if first else "", body, "\n" if last else ""))
            elif role == "assistant":
                out.append(self._assistant(messages, i, last_query, has_user))
            else:
                raise CookbookError(f"renderer {self.name or 'qwen3'!r} cannot write a message with role {role!r}")
        return out

    def _assistant(self, messages: list[Message], i: int, last_query: int, has_user: bool) -> RenderedMessage:
        m = messages[i]
        is_last = i == len(messages) - 1
        reasoning, content = reasoning_and_content(m)
        framed = self.frames_thinking and i > last_query and (is_last or bool(reasoning))
        header = f"{IM_START}assistant\n"
        if framed:
            block = THINK.render(reasoning.strip("\n"))
            if self.disable_thinking:
                if reasoning.strip("\n"):
                    raise CookbookError(
                        f"renderer {self.name or 'qwen3_disable_thinking'!r}: message {i} has thinking content, which "
                        "Qwen3's template writes after the last user message; thinking is off in this renderer. "
                        "Use `qwen3` for conversations that reason, or remove the thinking."
                    )
                header += block  # the generation prompt's empty block: not trained
                text = content.lstrip("\n")
            else:
                text = block + content.lstrip("\n")
        else:
            if self.disable_thinking and is_last and not has_user:
                raise CookbookError(
                    f"renderer {self.name or 'qwen3_disable_thinking'!r}: the conversation has no user message, so "
                    "Qwen3's template writes no empty think block on its final assistant turn, while the generation "
                    "prompt always does; add a user message or use `qwen3`."
                )
            text = content
        calls = m.get("tool_calls") or []
        if calls:
            # The template writes a newline before the first call when the text is non-empty
            # (judged before its leading newlines are dropped), and between calls.
            text += ("\n" if content else "") + TOOL_CALLS.encode_calls(calls)
        return RenderedMessage(header, text + IM_END, "\n")

    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        if role == "assistant":
            return f"{IM_START}assistant\n" + (EMPTY_THINK if self.disable_thinking else "")
        return f"{IM_START}{'user' if role == 'tool' else role}\n"

    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        text, term = self.split_response(tokens)
        return self.parse_text(text, THINK, TOOL_CALLS), term


class Qwen3DisableThinkingRenderer(Qwen3Renderer):
    """Qwen3 with thinking off: the template's `enable_thinking=False`."""

    disable_thinking = True
    template_kwargs = {"enable_thinking": False}


class NoThinkBlockOnTheFinalAnswer(TemplateDifference):
    """Qwen3's original template writes an empty think block on a training
    example's final answer (after the last user message); 2507 Instruct models
    never see one. Applied: that block is removed from the template's text."""

    description = (
        "Qwen3's original template writes an empty think block on the final assistant turn; "
        "2507 Instruct models use no think blocks, so this renderer writes none"
    )

    def applies(self, messages: list[Message], tools: list[ToolSpec] | None, *, generation: bool) -> bool:
        n = len(messages)
        return not generation and n > 0 and messages[-1]["role"] == "assistant" and n - 1 > last_query_index(messages)

    def template_output(self, text: str, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        opener = f"{IM_START}assistant\n"
        at = text.rfind(opener)
        if at < 0 or not text.startswith(EMPTY_THINK, at + len(opener)):
            raise TemplateDifferenceError("the template's final assistant turn does not open with an empty think block")
        return text[: at + len(opener)] + text[at + len(opener) + len(EMPTY_THINK) :]


class Qwen3InstructRenderer(Qwen3Renderer):
    """Qwen3 2507 Instruct: Qwen3's format with no think blocks; thinking is refused."""

    supports_thinking = False
    frames_thinking = False

    template_differences = (NoThinkBlockOnTheFinalAnswer(),)
