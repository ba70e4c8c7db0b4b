"""Running the tool calls of one assistant turn.

`execute_tool_calls(calls, tools)` runs every call of a turn concurrently and
returns one `tool` message per call, in the calls' order, each with the call's
id. Nothing a call does reaches the caller as an exception: a call that did
not parse, an unknown tool, arguments that break the tool's schema, a call
over its time limit and an exception inside the tool each become an error
result the model reads (`Error: ...`), tagged with its kind for metrics
(`run_tool_calls` returns the outcomes with those kinds, `tool_call_metrics`
counts them).

Sync tools run in a daemon thread each, so a call that never returns is
abandoned at its time limit instead of blocking the event loop or its
shutdown; the thread itself cannot be killed, so a tool that must be stopped
hard (model-written code) runs its work in a subprocess (the sandbox).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cookbook_cli.tools.schema import validate_arguments
from cookbook_cli.tools.tool import Tool
from cookbook_cli.types import Message, ToolCall, UnparsedToolCall

#: The kinds of failed call, as metrics name them.
ERROR_KINDS = ("malformed", "unknown_tool", "bad_arguments", "timeout", "exception")
#: A result longer than this many characters is cut (the model's context is finite).
DEFAULT_MAX_RESULT_CHARS = 8000


@dataclass(frozen=True)
class ToolOutcome:
    """One call's result message, its error kind (None when the tool ran and returned) and its duration."""

    message: Message
    error: str | None
    seconds: float
    name: str


def tool_table(tools: Mapping[str, Tool] | Sequence[Tool]) -> dict[str, Tool]:
    """Tools by name, from a mapping or a sequence."""
    return dict(tools) if isinstance(tools, Mapping) else {t.name: t for t in tools}


async def execute_tool_calls(
    calls: Sequence[ToolCall | UnparsedToolCall],
    tools: Mapping[str, Tool] | Sequence[Tool],
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> list[Message]:
    """The `tool` messages answering `calls` (see the module docstring)."""
    return [o.message for o in await run_tool_calls(calls, tools, max_result_chars)]


async def run_tool_calls(
    calls: Sequence[ToolCall | UnparsedToolCall],
    tools: Mapping[str, Tool] | Sequence[Tool],
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> list[ToolOutcome]:
    """Every call's outcome, in order; the calls run concurrently."""
    table = tool_table(tools)
    return list(await asyncio.gather(*(_run_one(c, table, max_result_chars) for c in calls)))


def tool_call_metrics(outcomes: Sequence[ToolOutcome]) -> dict[str, float]:
    """Counts: `tool_calls`, `tool_errors` and `tool_error/<kind>` for each kind."""
    out = {"tool_calls": float(len(outcomes)), "tool_errors": float(sum(o.error is not None for o in outcomes))}
    for kind in ERROR_KINDS:
        out[f"tool_error/{kind}"] = float(sum(o.error == kind for o in outcomes))
    return out


async def _run_one(call: ToolCall | UnparsedToolCall, tools: dict[str, Tool], max_chars: int) -> ToolOutcome:
    start = time.monotonic()

    def done(content: str, error: str | None, name: str = "") -> ToolOutcome:
        message: Message = {"role": "tool", "content": _cut(content, max_chars)}
        if isinstance(call, ToolCall):
            if call.id is not None:
                message["tool_call_id"] = call.id
            message["name"] = call.name
        return ToolOutcome(message, error, time.monotonic() - start, name)

    if isinstance(call, UnparsedToolCall):
        return done(f"Error: the tool call could not be parsed: {call.error}", "malformed")
    found = tools.get(call.name)
    if found is None:
        known = ", ".join(sorted(tools)) or "none"
        return done(f"Error: unknown tool {call.name!r}; the tools are: {known}", "unknown_tool", call.name)
    try:
        arguments = call.arguments_dict()
    except ValueError as e:
        return done(f"Error: the arguments are not a JSON object: {e}", "bad_arguments", call.name)
    problems = validate_arguments(arguments, found.parameters)
    if problems:
        return done(f"Error: bad arguments for {call.name}: " + "; ".join(problems), "bad_arguments", call.name)
    try:
        result = await _call(found.fn, arguments, found.timeout_s)
    except TimeoutError:
        return done(f"Error: {call.name} did not finish within {found.timeout_s:g} s", "timeout", call.name)
    except (Exception, SystemExit) as e:  # a tool calling sys.exit() must not end the run
        return done(f"Error: {call.name} failed: {type(e).__name__}: {e}", "exception", call.name)
    return done(result_text(result), None, call.name)


def result_text(result: Any) -> str:
    """What the model reads of a tool's return value: a string as is, anything else as JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, default=str)


async def _call(fn: Callable[..., Any], arguments: dict[str, Any], timeout_s: float | None) -> Any:
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        return await asyncio.wait_for(fn(**arguments), timeout_s)
    return await asyncio.wait_for(_in_daemon_thread(fn, arguments), timeout_s)


def _in_daemon_thread(fn: Callable[..., Any], arguments: dict[str, Any]) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():  # cancelled by the time limit: the late result is dropped
            future.set_result(value) if ok else future.set_exception(value)

    def work() -> None:
        try:
            value, ok = fn(**arguments), True
        except BaseException as e:  # handed to the awaiting task, which reports it
            value, ok = e, False
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:  # the loop closed while the call ran
            pass

    threading.Thread(target=work, name="cookbook-tool", daemon=True).start()
    return future


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut]"
