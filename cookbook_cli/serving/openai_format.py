"""Replies, stream chunks and logprobs in the shapes of OpenAI's API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cookbook_cli.serving.model import Generation, Reply
    from cookbook_cli.tokenizers import Tokenizer


def _token(tokenizer: Tokenizer, tid: int, logprob: float) -> dict[str, Any]:
    text = tokenizer.decode([tid])
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def chat_logprobs(reply: Reply, tokenizer: Tokenizer) -> dict[str, Any]:
    tops = reply.top_logprobs or [[] for _ in reply.tokens]
    content = [
        {**_token(tokenizer, t, lp), "top_logprobs": [_token(tokenizer, i, v) for i, v in top]}
        for t, lp, top in zip(reply.tokens, reply.logprobs, tops)
    ]
    return {"content": content, "refusal": None}


def completion_logprobs(reply: Reply, tokenizer: Tokenizer) -> dict[str, Any]:
    tokens = [tokenizer.decode([t]) for t in reply.tokens]
    offsets, at = [], 0
    for text in tokens:
        offsets.append(at)
        at += len(text)
    tops = reply.top_logprobs or [[] for _ in reply.tokens]
    return {
        "tokens": tokens,
        "token_logprobs": reply.logprobs,
        "top_logprobs": [{tokenizer.decode([i]): v for i, v in top} for top in tops],
        "text_offset": offsets,
    }


def _tool_calls(reply: Reply, index: bool = False) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(reply.tool_calls):
        item = {"id": call.id or f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        out.append({"index": i, **item} if index else item)
    return out


def _message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text if reply.text or not reply.tool_calls else None}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    return message


def _completion(kind: str, gen: Generation, ident: str, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": ident, "object": kind, "created": int(time.time()), "model": model, "choices": choices, "usage": gen.usage()}


def chat_completion(gen: Generation, ident: str, model: str, tokenizer: Tokenizer, logprobs: bool) -> dict[str, Any]:
    return _completion("chat.completion", gen, ident, model, [
        {"index": i, "message": _message(r), "logprobs": chat_logprobs(r, tokenizer) if logprobs else None, "finish_reason": r.finish_reason}
        for i, r in enumerate(gen.replies)
    ])


def text_completion(gen: Generation, ident: str, model: str, tokenizer: Tokenizer, logprobs: bool) -> dict[str, Any]:
    return _completion("text_completion", gen, ident, model, [
        {"index": i, "text": r.text, "logprobs": completion_logprobs(r, tokenizer) if logprobs else None, "finish_reason": r.finish_reason}
        for i, r in enumerate(gen.replies)
    ])


def sse(obj: dict[str, Any] | str) -> str:
    """One server-sent event."""
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)}\n\n"


def chat_chunks(gen: Generation, ident: str, model: str, tokenizer: Tokenizer, logprobs: bool, include_usage: bool) -> Iterator[str]:
    """The reply as `chat.completion.chunk` events: per choice its role, its
    reasoning, its content (with logprobs), its tool calls, then how it ended."""
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices, **extra})

    for i, r in enumerate(gen.replies):
        yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
        if r.reasoning is not None:
            yield chunk([{"index": i, "delta": {"reasoning_content": r.reasoning}, "logprobs": None, "finish_reason": None}])
        if r.text:
            yield chunk([{"index": i, "delta": {"content": r.text}, "logprobs": chat_logprobs(r, tokenizer) if logprobs else None, "finish_reason": None}])
        if r.tool_calls:
            yield chunk([{"index": i, "delta": {"tool_calls": _tool_calls(r, index=True)}, "logprobs": None, "finish_reason": None}])
        yield chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": r.finish_reason}])
    if include_usage:
        yield chunk([], usage=gen.usage())
    yield sse("[DONE]")


def completion_chunks(gen: Generation, ident: str, model: str, tokenizer: Tokenizer, logprobs: bool, include_usage: bool) -> Iterator[str]:
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return sse({"id": ident, "object": "text_completion", "created": created, "model": model, "choices": choices, **extra})

    for i, r in enumerate(gen.replies):
        yield chunk([{"index": i, "text": r.text, "logprobs": completion_logprobs(r, tokenizer) if logprobs else None, "finish_reason": None}])
        yield chunk([{"index": i, "text": "", "logprobs": None, "finish_reason": r.finish_reason}])
    if include_usage:
        yield chunk([], usage=gen.usage())
    yield sse("[DONE]")
