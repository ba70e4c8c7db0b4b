"""The registered `python` tool: the model's program runs in the sandbox, through the tool executor."""

from __future__ import annotations

import asyncio
import json

from cookbook_cli.tools import execute_tool_calls, get_tool
from cookbook_cli.types import ToolCall


def _call(code: str) -> str:
    tool = get_tool("python")
    call = ToolCall(name="python", arguments=json.dumps({"code": code}), id="c1")
    (message,) = asyncio.run(execute_tool_calls([call], [tool]))
    assert message["role"] == "tool" and message["tool_call_id"] == "c1"
    return str(message["content"])


def test_the_python_tool_returns_what_the_program_printed(bwrap_backend):
    assert _call("print(sum(range(10)))") == "exit status 0\nstdout:\n45\n"


def test_the_python_tool_reports_errors_and_isolation(bwrap_backend):
    text = _call("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)")
    assert text.startswith("exit status 1\nstderr:\n") and "Network is unreachable" in text


def test_the_python_tool_names_the_limit_it_hit(bwrap_backend):
    from cookbook_cli.sandbox import SandboxLimits
    from cookbook_cli.tools.python_tool import describe_run

    text = describe_run("while True:\n    pass", SandboxLimits(wall_time_s=1, cpu_time_s=1))
    assert text in ("exit status 137 (stopped: timeout limit)", "exit status 152 (stopped: timeout limit)")
