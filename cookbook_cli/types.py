"""Messages, tool calls and tool specs: the data every layer shares.

A `Message` is a plain dict (a TypedDict), so conversations read from JSON need
no conversion beyond `normalize_message`, which validates a message and turns
OpenAI-shaped `tool_calls` into `ToolCall` objects and `reasoning_content` into
a thinking part. Datum / ModelInput / TensorData come from `tinker.types`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, NotRequired, TypedDict

from cookbook_cli.errors import CookbookError

Role = str  # system, user, assistant, tool (renderers may accept more)
ROLES = ("system", "user", "assistant", "tool")


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ThinkingPart(TypedDict):
    type: Literal["thinking"]
    thinking: str


ContentPart = TextPart | ThinkingPart


@dataclass(frozen=True)
class ToolCall:
    """A function call made by the assistant. `arguments` is a JSON string, as
    in the OpenAI API, so it round-trips byte for byte."""

    name: str
    arguments: str = "{}"
    id: str | None = None

    def arguments_dict(self) -> dict[str, Any]:
        value = json.loads(self.arguments) if self.arguments.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("tool call arguments must be a JSON object")
        return value

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        if self.id is not None:
            out["id"] = self.id
        return out

    @classmethod
    def from_openai(cls, d: dict[str, Any]) -> ToolCall:
        fn = d.get("function", d)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError("a tool call needs function.name")
        args = fn.get("arguments", "{}")
        if args is None:
            args = "{}"
        if isinstance(args, str):
            # Checked here, when the data is read, rather than at render time.
            try:
                value = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"function.arguments is not valid JSON ({e.msg} at character {e.pos}): {args[:60]!r}") from None
            if not isinstance(value, dict):
                raise ValueError(f"function.arguments must be a JSON object, got {args[:60]!r}")
        elif isinstance(args, dict):
            args = json.dumps(args, ensure_ascii=False)
        else:
            raise ValueError(f"function.arguments must be a JSON object or a string holding one, got {type(args).__name__}")
        call_id = d.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise ValueError(f"id must be a string, got {type(call_id).__name__}")
        return cls(name=fn["name"], arguments=args, id=call_id)


@dataclass(frozen=True)
class UnparsedToolCall:
    """Text that looked like a tool call but could not be parsed; kept with why."""

    raw_text: str
    error: str


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call (an OpenAI function spec)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @classmethod
    def from_openai(cls, d: dict[str, Any]) -> ToolSpec:
        fn = d.get("function", d)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError("a tool needs function.name")
        description = fn.get("description") or ""
        if not isinstance(description, str):
            raise ValueError(f"function.description must be a string, got {type(description).__name__}")
        parameters = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise ValueError(f"function.parameters must be a JSON schema object, got {type(parameters).__name__}")
        return cls(name=fn["name"], description=description, parameters=parameters)


class Message(TypedDict):
    role: Role
    content: str | list[ContentPart]
    tool_calls: NotRequired[list[ToolCall]]
    unparsed_tool_calls: NotRequired[list[UnparsedToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]
    trainable: NotRequired[bool]


class Choice(str, Enum):
    """A str enum read from config text; a wrong value is a one-line error listing the valid ones."""

    __kind__ = "value"

    @classmethod
    def parse(cls, value: str | Choice) -> Any:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            from cookbook_cli.errors import UnknownNameError

            raise UnknownNameError(cls.__kind__, str(value), [v.value for v in cls]) from None


class TrainOnWhat(Choice):
    """Which tokens of a conversation get training weight 1."""

    __kind__ = "train_on_what value"

    LAST_ASSISTANT_MESSAGE = "last_assistant_message"
    LAST_ASSISTANT_TURN = "last_assistant_turn"
    ALL_ASSISTANT_MESSAGES = "all_assistant_messages"
    ALL_MESSAGES = "all_messages"
    ALL_TOKENS = "all_tokens"
    ALL_USER_AND_SYSTEM_MESSAGES = "all_user_and_system_messages"
    CUSTOMIZED = "customized"


class LossReduction(Choice):
    """How a supervised example's token losses are combined (its Datum weights)."""

    __kind__ = "loss_reduction value"

    MEAN = "mean"  # weights / their sum: each example counts once, whatever its length
    SUM = "sum"  # weight 1 per trained token: longer examples count more


# -- content helpers, shared by every renderer ---------------------------------


def text_of(message: Message) -> str:
    """The message's visible text (its text parts joined, thinking excluded)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(p["text"] for p in content if p["type"] == "text")


def thinking_of(message: Message) -> str | None:
    """The message's thinking, or None when it has no thinking part."""
    content = message["content"]
    if isinstance(content, str):
        return None
    parts = [p["thinking"] for p in content if p["type"] == "thinking"]
    return "".join(parts) if parts else None


def make_content(text: str, thinking: str | None) -> str | list[ContentPart]:
    """Content with an optional thinking part first (the canonical shape parsers return)."""
    if thinking is None:
        return text
    parts: list[ContentPart] = [ThinkingPart(type="thinking", thinking=thinking)]
    if text:
        parts.append(TextPart(type="text", text=text))
    return parts


# -- validation of untrusted input ---------------------------------------------


def normalize_message(raw: Any, where: str = "message") -> Message:
    """Validate one message from JSON and return it in canonical form.

    Raises CookbookError naming `where` and the offending field.
    """
    if not isinstance(raw, dict):
        raise CookbookError(f"{where}: a message must be a JSON object, got {type(raw).__name__}")
    role = raw.get("role")
    if role not in ROLES:
        raise CookbookError(f"{where}: field 'role' must be one of {', '.join(ROLES)}; got {role!r}")
    content = raw.get("content")
    if content is None:
        # OpenAI writes `content: null` on an assistant message that only calls tools;
        # anywhere else a missing text would be rendered as an empty message without a word.
        if role != "assistant" or not raw.get("tool_calls"):
            state = "is null" if "content" in raw else "is missing"
            raise CookbookError(
                f"{where}: field 'content' {state} on {'an' if role == 'assistant' else 'a'} {role} message; "
                "give its text (\"\" if it is meant to be empty)"
            )
        content = ""
    if isinstance(content, list):
        parts: list[ContentPart] = []
        for j, part in enumerate(content):
            ptype = part.get("type") if isinstance(part, dict) else None
            if ptype == "text" and isinstance(part.get("text"), str):
                parts.append(TextPart(type="text", text=part["text"]))
            elif ptype == "thinking" and isinstance(part.get("thinking"), str):
                parts.append(ThinkingPart(type="thinking", thinking=part["thinking"]))
            else:
                raise CookbookError(
                    f"{where}: field 'content[{j}]' must be {{'type': 'text', 'text': ...}} or "
                    f"{{'type': 'thinking', 'thinking': ...}}; got {part!r}"
                )
        content_out: str | list[ContentPart] = parts
    elif isinstance(content, str):
        content_out = content
    else:
        raise CookbookError(f"{where}: field 'content' must be a string or a list of parts; got {type(content).__name__}")
    reasoning = raw.get("reasoning_content")
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise CookbookError(f"{where}: field 'reasoning_content' must be a string")
        if role != "assistant":
            raise CookbookError(f"{where}: field 'reasoning_content' is only allowed on assistant messages")
        body = content_out if isinstance(content_out, list) else [TextPart(type="text", text=content_out)]
        if any(p["type"] == "thinking" for p in body):
            raise CookbookError(f"{where}: both 'reasoning_content' and a thinking part; give one")
        content_out = [ThinkingPart(type="thinking", thinking=reasoning)] + [p for p in body if p["type"] != "text" or p["text"]]
    msg: Message = {"role": role, "content": content_out}
    if raw.get("tool_calls"):
        if role != "assistant":
            raise CookbookError(f"{where}: field 'tool_calls' is only allowed on assistant messages")
        if not isinstance(raw["tool_calls"], list):
            raise CookbookError(f"{where}: field 'tool_calls' must be a list")
        calls = []
        for j, tc in enumerate(raw["tool_calls"]):
            try:
                if not isinstance(tc, dict):
                    raise ValueError("must be an object")
                calls.append(ToolCall.from_openai(tc))
            except ValueError as e:
                raise CookbookError(f"{where}: field 'tool_calls[{j}]': {e}") from None
        msg["tool_calls"] = calls
    for key in ("tool_call_id", "name"):
        if key in raw and raw[key] is not None:
            if not isinstance(raw[key], str):
                raise CookbookError(f"{where}: field {key!r} must be a string")
            msg[key] = raw[key]  # type: ignore[literal-required]
    if raw.get("trainable") is not None:  # None: absent (Arrow fills missing struct fields with null)
        if not isinstance(raw["trainable"], bool):
            raise CookbookError(f"{where}: field 'trainable' must be true or false")
        msg["trainable"] = raw["trainable"]
    return msg


def message_to_json(message: Message) -> dict[str, Any]:
    """The inverse of `normalize_message`: a JSON-ready dict."""
    out: dict[str, Any] = {k: v for k, v in message.items() if k not in ("tool_calls", "unparsed_tool_calls")}
    if message.get("tool_calls"):
        out["tool_calls"] = [tc.to_openai() for tc in message["tool_calls"]]
    if message.get("unparsed_tool_calls"):
        out["unparsed_tool_calls"] = [{"raw_text": u.raw_text, "error": u.error} for u in message["unparsed_tool_calls"]]
    return out
