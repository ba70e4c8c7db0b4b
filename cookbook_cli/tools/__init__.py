"""Tools an agent may call: definition, registry look-up and execution.

- `Tool` / `tool`: a name, a description, the JSON schema of the arguments
  (derived from a typed function and its docstring) and a sync or async
  callable with a time limit (`tool.py`, `schema.py`).
- `get_tool(name)` / `list_tools()`: the `register_tools` registry (`lookup.py`).
- `execute_tool_calls(calls, tools)`: one assistant turn's calls run
  concurrently, every failure turned into an error result (`executor.py`).

Tool-use environments that put these in front of a model are in
`cookbook_cli.rl.tool_env`.
"""

from cookbook_cli.tools.executor import (
    ERROR_KINDS,
    ToolOutcome,
    execute_tool_calls,
    result_text,
    run_tool_calls,
    tool_call_metrics,
)
from cookbook_cli.tools.lookup import get_tool, get_tools, list_tools
from cookbook_cli.tools.tool import DEFAULT_TIMEOUT_S, Tool, tool

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ERROR_KINDS",
    "Tool",
    "ToolOutcome",
    "execute_tool_calls",
    "get_tool",
    "get_tools",
    "list_tools",
    "result_text",
    "run_tool_calls",
    "tool",
    "tool_call_metrics",
]
