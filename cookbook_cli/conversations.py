"""Conversation files: one JSON object per line, `{"messages": [...], "tools": [...]}`.

Errors name the file, the line and the field, so a user can fix the data.
Files are read through `user_files.iter_jsonl`, the reader every user file shares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.user_files import iter_jsonl
from cookbook_cli.types import Message, ToolSpec, message_to_json, normalize_message


@dataclass
class Conversation:
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    #: Where it was read from ("file.jsonl:12", "dataset[train] row 3"): errors
    #: raised while rendering it later name this place.
    source: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"messages": [message_to_json(m) for m in self.messages]}
        if self.tools:
            out["tools"] = [t.to_openai() for t in self.tools]
        return out


def located(source: str | None, error: CookbookError, fallback: str = "") -> CookbookError:
    """`error` prefixed with the place its data came from (`source`, else `fallback`)."""
    where = source or fallback
    return CookbookError(f"{where}: {error}") if where else error


def parse_messages(raw: Any, where: str, name: str = "messages") -> list[Message]:
    """Validate a JSON list of messages held in field `name` (may be empty)."""
    if not isinstance(raw, list):
        raise CookbookError(f"{where}: field {name!r} must be a list of messages, got {type(raw).__name__}")
    return [normalize_message(m, f"{where}: {name}[{i}]") for i, m in enumerate(raw)]


def parse_tools(raw: Any, where: str) -> list[ToolSpec]:
    """Validate the optional `tools` field: a list of OpenAI function specs."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CookbookError(f"{where}: field 'tools' must be a list of function specs, got {type(raw).__name__}")
    tools: list[ToolSpec] = []
    for i, t in enumerate(raw):
        try:
            if not isinstance(t, dict):
                raise ValueError(f"must be an object, got {type(t).__name__}")
            tools.append(ToolSpec.from_openai(t))
        except ValueError as e:
            raise CookbookError(f"{where}: field 'tools[{i}]': {e}") from None
    return tools


def parse_conversation(obj: Any, where: str) -> Conversation:
    """Validate one decoded JSON line. `where` prefixes every error."""
    if not isinstance(obj, dict):
        raise CookbookError(f"{where}: expected a JSON object with a 'messages' list, got {_json_type(obj)}")
    if "messages" not in obj:
        raise CookbookError(f"{where}: missing field 'messages' (each line must be {{\"messages\": [...]}})")
    raw_messages = obj["messages"]
    if not isinstance(raw_messages, list) or not raw_messages:
        raise CookbookError(f"{where}: field 'messages' must be a non-empty list")
    messages = parse_messages(raw_messages, where)
    return Conversation(messages, parse_tools(obj.get("tools"), where), source=where)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def iter_conversations(path: str | Path) -> Iterator[Conversation]:
    """Yield the conversations of a JSONL file, validating each line."""
    for _, where, obj in iter_jsonl(path, "conversation file"):
        yield parse_conversation(obj, where)


def load_conversations(path: str | Path) -> list[Conversation]:
    convs = list(iter_conversations(path))
    if not convs:
        raise CookbookError(f"conversation file {str(path)!r} holds no conversations")
    return convs


def refuse_system_last(conv: Conversation, where: str) -> None:
    """A prompt must leave the model something to answer: not end on a system message."""
    if conv.messages[-1]["role"] == "system":
        raise CookbookError(
            f"{where}: the conversation ends with a system message, which leaves the model nothing to answer; "
            "end it with a user (or tool) message"
        )
