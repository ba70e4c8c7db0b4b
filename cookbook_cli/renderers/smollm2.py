"""SmolLM2 Instruct chat format: ChatML with SmolLM2's default system prompt.

    <|im_start|>system
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    <|im_start|>user
    What is 2+2?<|im_end|>
    <|im_start|>assistant
    4<|im_end|>

The system turn above is written when the conversation does not open with a
system message (as SmolLM2's chat template does); a conversation's own system
message replaces it. Each message ends with `<|im_end|>` and a newline; the
newline is written after the end marker and not trained on (except with
`all_tokens`). There is no BOS token. Sampling stops at `<|im_end|>`; a sampled
`<|endoftext|>` also ends a response (termination `eos`). Thinking content
has no format in SmolLM2 and is refused.

Tools: SmolLM2's template has no tool syntax (it writes each message's
content), so tools are written the way SmolLM2's instruct data wrote
function calling (the APIGen part of smoltalk), inside the messages the
template renders: the declarations, as a JSON list in `<tools></tools>` with
instructions, end the system message (the default one when the conversation
has none); an assistant's calls follow its text (after a newline) as one
block `<tool_call>[{"name": ..., "arguments": {...}}, ...]</tool_call>`; a
tool result is a `tool` turn (`<|im_start|>tool\n...<|im_end|>`, as the
template writes any role). `renderers check` compares with the template
rendering those same messages. Parsing accepts a list or a single call
object in each block; a block that does not parse is kept with its error.

`cookbook renderers check smollm2` against the model's own template: every
built-in conversation matches token for token except an answer that starts
with a newline, where the text is the same but the tokenizer would merge the
header's newline with the answer's (`\n\n`); the renderer encodes header and
answer apart so that the generation prompt stays a token prefix of the
training example (a boundary difference every renderer shares).
"""

from __future__ import annotations

import json

from cookbook_cli.renderers.base import RenderedMessage, StopTokenRenderer
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.renderers.tool_calls import JSONObjectToolCalls, ParsedCalls, canonical_json
from cookbook_cli.types import Message, ToolCall, ToolSpec, UnparsedToolCall, text_of

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
HEADER = IM_START + "{}\n"  # .format(role)
TOOLS_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose.\n\n"
    "You have access to the following tools:\n<tools>{tools}</tools>\n\n"
    "To call tools, write them in this format:\n"
    '<tool_call>[{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}}]</tool_call>\n'
    "When you have the answer, reply with it without a tool call."
)


class JSONListToolCalls(JSONObjectToolCalls):
    """All of a message's calls in one `<tool_call>[...]</tool_call>` block, a JSON list."""

    def __init__(self) -> None:
        super().__init__("<tool_call>", "</tool_call>", prefix="", suffix="", separator="\n")

    def encode_calls(self, calls: list[ToolCall]) -> str:
        bodies = [self.encode_call(c)[len(self.open_tag) : -len(self.close_tag)] for c in calls]
        return self.open_tag + "[" + ", ".join(bodies) + "]" + self.close_tag

    def parse(self, text: str) -> ParsedCalls:
        rest, bodies, unclosed = self.find_calls(text)
        calls: list[ToolCall] = []
        unparsed: list[UnparsedToolCall] = []
        for body in bodies:
            raw = self.open_tag + body + self.close_tag
            try:
                value = json.loads(body)
            except json.JSONDecodeError as e:
                unparsed.append(UnparsedToolCall(raw, f"invalid JSON in tool call: {e.msg}"))
                continue
            for item in value if isinstance(value, list) else [value]:
                try:
                    calls.append(self.decode_call(canonical_json(item)))
                except ValueError as e:
                    unparsed.append(UnparsedToolCall(raw, str(e)))
        return ParsedCalls(rest, calls, unparsed + list(unclosed))


TOOL_CALLS = JSONListToolCalls()


def tools_block(tools: list[ToolSpec]) -> str:
    return TOOLS_PROMPT.format(tools=canonical_json([t.to_openai() for t in tools]))


def with_tools(messages: list[Message], tools: list[ToolSpec] | None) -> list[Message]:
    """The conversation as SmolLM2's template sees it: plain content, the tool
    declarations in the (default) system message, calls in the assistant's text."""
    out: list[Message] = []
    if tools and (not messages or messages[0]["role"] != "system"):
        out.append({"role": "system", "content": DEFAULT_SYSTEM_PROMPT})
    for m in messages:
        text = text_of(m)
        if m.get("tool_calls"):
            text = TOOL_CALLS.append_calls(text, list(m["tool_calls"]))
        out.append({"role": m["role"], "content": text})
    if tools:
        out[0] = {"role": "system", "content": f"{text_of(out[0])}\n\n{tools_block(tools)}"}
    return out


class SmolLM2Renderer(StopTokenRenderer):
    stop_token = IM_END
    end_of_text = END_OF_TEXT
    supports_tools = True

    def preamble(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        if (messages or tools) and (not messages or messages[0]["role"] != "system"):
            system = f"{DEFAULT_SYSTEM_PROMPT}\n\n{tools_block(tools)}" if tools else DEFAULT_SYSTEM_PROMPT
            return f"{HEADER.format('system')}{system}{IM_END}\n"
        return ""

    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        plain = with_tools(messages, tools)[-len(messages) :] if messages else []
        return [RenderedMessage(HEADER.format(m["role"]), text_of(m) + IM_END, "\n") for m in plain]

    def template_text(self, template, messages, tools, *, add_generation_prompt, special_tokens=None):  # type: ignore[no-untyped-def]
        return super().template_text(
            template, with_tools(messages, tools), None, add_generation_prompt=add_generation_prompt, special_tokens=special_tokens
        )

    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        return HEADER.format(role)

    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        text, term = self.split_response(tokens)
        return self.parse_text(text, tool_format=TOOL_CALLS), term
