"""Tools: the schema a typed function gets, the executor's handling of every kind
of call, the built-in calculator and search tools, and `cookbook tools list`."""

from __future__ import annotations

import asyncio
import enum
import json
import pickle
import threading
from typing import Literal

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.errors import CookbookError
from cookbook_cli.tools import Tool, execute_tool_calls, get_tool, run_tool_calls, tool, tool_call_metrics
from cookbook_cli.tools.calculator import calculator
from cookbook_cli.types import ToolCall, UnparsedToolCall


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@tool(timeout_s=3)
def forecast(city: str, days: int = 1, unit: Unit = Unit.C, hourly: bool = False,
             tags: list[str] | None = None, mode: Literal["fast", "exact"] = "fast") -> dict:
    """Weather forecast for a city.

    Args:
        city: the city's name,
            as it is spelled locally
        days (int): how many days ahead
    """
    return {"city": city, "days": days}


def call(name: str, args: object, id: str | None = "c1") -> ToolCall:
    return ToolCall(name=name, arguments=args if isinstance(args, str) else json.dumps(args), id=id)


def test_the_schema_comes_from_the_signature_and_the_docstring():
    assert isinstance(forecast, Tool) and forecast.name == "forecast" and forecast.timeout_s == 3
    assert forecast.description == "Weather forecast for a city."
    p = forecast.parameters
    assert p["required"] == ["city"] and p["additionalProperties"] is False
    assert p["properties"]["city"] == {"type": "string", "description": "the city's name, as it is spelled locally"}
    assert p["properties"]["days"] == {"type": "integer", "description": "how many days ahead", "default": 1}
    assert p["properties"]["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert p["properties"]["hourly"] == {"type": "boolean", "default": False}
    assert p["properties"]["tags"] == {"type": "array", "items": {"type": "string"}, "default": None}
    assert p["properties"]["mode"] == {"enum": ["fast", "exact"], "type": "string", "default": "fast"}
    assert forecast.spec().to_openai()["function"]["name"] == "forecast"
    assert forecast(city="Oslo") == {"city": "Oslo", "days": 1}  # still callable as the function


def test_tool_as_a_call_and_its_refusals():
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(CookbookError, match="parameter 'x' has no type annotation"):
        tool(untyped)
    with pytest.raises(CookbookError, match="cannot describe type"):
        tool(_takes_a_set)
    made = tool(_takes_a_set, name="renamed", parameters={"type": "object", "properties": {}}, timeout_s=None)
    assert made.name == "renamed" and made.timeout_s is None and made.description == "Takes a set."
    with pytest.raises(CookbookError, match="timeout_s must be > 0"):
        Tool("t", "", fn=len, timeout_s=0)


def _takes_a_set(s: set[int] | complex) -> None:
    """Takes a set."""


def test_a_decorated_tool_pickles_by_reference():
    assert pickle.loads(pickle.dumps(forecast)) is forecast
    assert pickle.loads(pickle.dumps(calculator)) is calculator


def run(calls, tools):
    return asyncio.run(run_tool_calls(calls, tools))


def test_every_failure_becomes_a_tool_message_with_its_kind():
    release = threading.Event()

    def hangs() -> str:
        release.wait()
        return "late"

    async def raises(x: float) -> str:
        raise ValueError("no such thing")

    tools = [forecast, tool(hangs, timeout_s=0.05), tool(raises)]
    try:
        outcomes = run([
            call("forecast", {"city": "Oslo", "days": 2}, "a"),
            call("forecast", {"city": 3, "dayz": 1}, "b"),
            call("nowhere", {}, "c"),
            call("hangs", {}, "d"),
            call("raises", {"x": 1.5}, "e"),
            call("forecast", "[1, 2]", "f"),
            UnparsedToolCall(raw_text="<tool_call>{", error="missing '</tool_call>'"),
        ], tools)
    finally:
        release.set()
    kinds = [o.error for o in outcomes]
    assert kinds == [None, "bad_arguments", "unknown_tool", "timeout", "exception", "bad_arguments", "malformed"]
    texts = [o.message["content"] for o in outcomes]
    assert json.loads(texts[0]) == {"city": "Oslo", "days": 2}
    assert "city: expected string, got integer 3" in texts[1] and "unexpected argument 'dayz'" in texts[1]
    assert "unknown tool 'nowhere'; the tools are: forecast, hangs, raises" in texts[2]
    assert texts[3] == "Error: hangs did not finish within 0.05 s"
    assert texts[4] == "Error: raises failed: ValueError: no such thing"
    assert "not a JSON object" in texts[5] and "could not be parsed: missing" in texts[6]
    assert [o.message.get("tool_call_id") for o in outcomes] == ["a", "b", "c", "d", "e", "f", None]
    assert all(o.message["role"] == "tool" for o in outcomes)
    m = tool_call_metrics(outcomes)
    assert m["tool_calls"] == 7 and m["tool_errors"] == 6 and m["tool_error/bad_arguments"] == 2


def test_the_calls_of_one_turn_run_concurrently():
    # Each call waits for the other to start: run one after the other, both would time out.
    started = {"a": threading.Event(), "b": threading.Event()}

    def meet(me: str, other: str) -> str:
        started[me].set()
        return "met" if started[other].wait(timeout=30) else "alone"

    async def ameet(me: str, other: str) -> str:
        started[me].set()
        while not started[other].is_set():
            await asyncio.sleep(0)
        return "met"

    messages = asyncio.run(execute_tool_calls(
        [call("meet", {"me": "a", "other": "b"}, "1"), call("ameet", {"me": "b", "other": "a"}, "2")],
        {"meet": tool(meet), "ameet": tool(ameet)},
    ))
    assert [m["content"] for m in messages] == ["met", "met"]


def test_long_results_are_cut():
    (message,) = asyncio.run(execute_tool_calls([call("big", {})], [tool(_big, name="big")], max_result_chars=100))
    assert message["content"].startswith("x" * 100) and "[... 900 more characters cut]" in message["content"]


def _big() -> str:
    """A long result."""
    return "x" * 1000


@pytest.mark.parametrize(("expression", "value"), [
    ("(12 + 30) * 7 / 3", "98"), ("2 ** 10", "1024"), ("7 / 3", "2.333333333"), ("-3 % 5", "2"), ("17 // 5", "3"),
    ("1.5 * 4", "6"), ("3 × 4 ÷ 2", "6"), ("2^3", "8"),
])
def test_the_calculator(expression, value):
    assert calculator.fn(expression) == value


@pytest.mark.parametrize(("expression", "error"), [
    ("__import__('os').system('true')", "only numbers"), ("9 ** 9 ** 9", "exponent"), ("1 / 0", "division by zero"),
    ("abc", "only numbers"), ("2 +", "not an arithmetic expression"), ("10 ** 99 * 10", "more than 100 digits"),
    ("(-8) ** 0.5", "not a real number"), ("1" * 300, "longer than 200"),
])
def test_the_calculator_refuses(expression, error):
    (message,) = asyncio.run(execute_tool_calls([call("calculator", {"expression": expression})], [calculator]))
    assert message["content"].startswith("Error: calculator failed: CalculatorError") and error in message["content"]


def test_the_search_tool_finds_the_document():
    search = get_tool("search")
    top = search.fn("Who founded Galyar?").split("\n\n")[0]
    assert top.startswith("[Galyar]") and "Oskar Ferro" in top
    assert search.fn("zzzz qqqq") == "No documents match the query."


def test_tools_list_shows_plugin_description_and_arguments():
    runner = CliRunner()
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["tools", "list", "--json"]).stdout)}
    assert rows["calculator"]["plugin"] == "cookbook-cli" and rows["calculator"]["arguments"] == "expression: string"
    assert rows["search"]["parameters"]["required"] == ["query"]
    table = runner.invoke(app, ["tools", "list"])
    assert table.exit_code == 0 and "calculator" in table.stdout and "query: string" in table.stdout


def test_a_plugin_tool_is_listed_and_its_registered_name_wins(cookbook_plugin):
    class Plugin:
        @staticmethod
        @__import__("cookbook_cli").hookimpl
        def register_tools(register):
            register("acme_forecast", forecast, "Forecast (acme)")

    cookbook_plugin(Plugin(), "acme")
    assert get_tool("acme_forecast").name == "acme_forecast" and get_tool("acme_forecast").description == "Forecast (acme)"
    with pytest.raises(CookbookError, match="unknown tool"):
        get_tool("nope")
