"""Request bodies of `/v1/chat/completions` and `/v1/completions`, checked.

Every parameter the server honours is read here; a parameter it does not
honour is refused by name (400) rather than silently ignored, except those
sent at their neutral value (`presence_penalty: 0`, `logit_bias: {}`, ...),
which change nothing, and `user`, which is only a label.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.serving.errors import ApiError, bad_request

if TYPE_CHECKING:
    from cookbook_cli.types import Message, ToolSpec

DEFAULT_MAX_TOKENS = 256
MAX_N = 16
MAX_TOP_LOGPROBS = 20  # OpenAI's limit for chat
MAX_COMPLETION_LOGPROBS = 5  # and for completions

_SAMPLING = {"model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "seed", "n", "stream", "stream_options", "user"}
# Accepted only at the value that changes nothing.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "presence_penalty": (0, 0.0, None),
    "frequency_penalty": (0, 0.0, None),
    "logit_bias": (None, {}),
    "parallel_tool_calls": (None, True),
    "response_format": (None, {"type": "text"}),
    "echo": (None, False),
    "suffix": (None, ""),
    "best_of": (None, 1),
}
_CHAT = _SAMPLING | {"messages", "tools", "tool_choice", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "parallel_tool_calls", "response_format"}
_COMPLETION = _SAMPLING | {"prompt", "logprobs", "echo", "suffix", "best_of", "presence_penalty", "frequency_penalty", "logit_bias"}


@dataclass(frozen=True)
class Sampling:
    """What every generation request asks for, whatever its endpoint."""

    model: str
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage
    top_logprobs: int | None = None  # None: no logprobs; k: each token's logprob and the k likeliest


@dataclass(frozen=True)
class ChatRequest:
    sampling: Sampling
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)


@dataclass(frozen=True)
class CompletionRequest:
    sampling: Sampling
    prompt: str | list[int]


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"the request body is not valid JSON: {e}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(body).__name__}", code="invalid_json")
    return body


def _check_known(body: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(k for k in body if k not in known)
    neutral_broken = sorted(k for k, ok in _NEUTRAL.items() if k in body and k in known and body[k] not in ok)
    refused = unknown + neutral_broken
    if refused:
        raise ApiError(400, f"unsupported parameter{'s' if len(refused) > 1 else ''}: {', '.join(refused)} (this server does not implement {'them' if len(refused) > 1 else 'it'})", param=refused[0], code="unsupported_parameter")


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"{name} must be a number, got {value!r}", name)
    if value < low or value > high or (low_open and value == low):
        raise bad_request(f"{name} must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}", name)
    return float(value)


def _integer(body: dict[str, Any], name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be a whole number, got {value!r}", name)
    if value < low or (high is not None and value > high):
        limit = f"at least {low}" if high is None else f"between {low} and {high}"
        raise bad_request(f"{name} must be {limit}, got {value}", name)
    return value


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise bad_request(f"stop must be a string or a list of strings, got {value!r}", "stop")
    return tuple(s for s in items if s)


def _sampling(body: dict[str, Any], top_logprobs: int | None) -> Sampling:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required: the name /v1/models lists", "model")
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise bad_request("give max_tokens or max_completion_tokens, not both", "max_completion_tokens")
    which = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request(f"stream must be true or false, got {stream!r}", "stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or set(options) - {"include_usage"}):
        raise bad_request("stream_options may hold include_usage only", "stream_options")
    top_k = _integer(body, "top_k", -1, -1)
    if top_k == 0:
        raise bad_request("top_k must be -1 (off) or at least 1, got 0", "top_k")
    return Sampling(
        model=model,
        max_tokens=int(_integer(body, which, DEFAULT_MAX_TOKENS, 1) or DEFAULT_MAX_TOKENS),
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, low_open=True),
        top_k=int(top_k or -1),
        stop=_stop(body.get("stop")),
        seed=_integer(body, "seed", None, -(2**63), 2**63 - 1),
        n=int(_integer(body, "n", 1, 1, MAX_N) or 1),
        stream=bool(stream),
        include_usage=bool((options or {}).get("include_usage")),
        top_logprobs=top_logprobs,
    )


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    from cookbook_cli.conversations import parse_messages, parse_tools
    from cookbook_cli.errors import CookbookError

    _check_known(body, _CHAT)
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise bad_request(f"logprobs must be true or false, got {logprobs!r}", "logprobs")
    top = _integer(body, "top_logprobs", None, 0, MAX_TOP_LOGPROBS)
    if top is not None and not logprobs:
        raise bad_request("top_logprobs needs logprobs: true", "top_logprobs")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("messages must be a non-empty list", "messages")
    try:
        messages = parse_messages(raw, "request")
        tools = parse_tools(body.get("tools"), "request")
    except CookbookError as e:
        raise bad_request(str(e), "messages" if "messages" in str(e) else "tools") from None
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise bad_request(
            f"tool_choice {choice!r} is not supported: the model decides whether to call a tool ('auto'), or is not shown the tools ('none')",
            "tool_choice",
        )
    return ChatRequest(_sampling(body, (top or 0) if logprobs else None), messages, [] if choice == "none" else tools)


def parse_completion(body: dict[str, Any]) -> CompletionRequest:
    _check_known(body, _COMPLETION)
    top = _integer(body, "logprobs", None, 0, MAX_COMPLETION_LOGPROBS)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one prompt
    if isinstance(prompt, list):
        if not prompt or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise bad_request("prompt must be a string or a list of token ids (one prompt per request)", "prompt")
    elif not isinstance(prompt, str) or not prompt:
        raise bad_request("prompt must be a non-empty string or a list of token ids (one prompt per request)", "prompt")
    return CompletionRequest(_sampling(body, top), prompt)
