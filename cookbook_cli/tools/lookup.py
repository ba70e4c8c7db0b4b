"""Looking tools up in the `register_tools` registry.

A plugin registers a tool as `register(name, Tool, description)`; the
registered name and description win over the `Tool`'s own (so one function
can be registered under a plugin-specific name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.tools.tool import Tool


def get_tool(name: str) -> Tool:
    """The tool registered as `name` (unknown names get suggestions)."""
    from cookbook_cli.plugins import registry

    entry = registry.tools.get_checked(name, lambda obj: isinstance(obj, Tool), "a cookbook_cli.tools.Tool")
    tool = entry.obj
    if tool.name != name or (entry.description and entry.description != tool.description):
        tool = dataclasses.replace(tool, name=name, description=entry.description or tool.description)
    return tool


def get_tools(names: Sequence[str]) -> list[Tool]:
    return [get_tool(n) for n in names]


def argument_summary(parameters: dict[str, Any]) -> str:
    """`a: integer, b?: string` (? marks optional arguments)."""
    required = set(parameters.get("required") or [])
    parts = []
    for name, schema in (parameters.get("properties") or {}).items():
        kind = schema.get("type") or ("enum" if "enum" in schema else "any")
        kind = "|".join(kind) if isinstance(kind, list) else kind
        parts.append(f"{name}{'' if name in required else '?'}: {kind}")
    return ", ".join(parts)


def list_tools() -> list[dict[str, Any]]:
    """Every registered tool: name, plugin, description, arguments (schema and summary), time limit."""
    from cookbook_cli.plugins import registry

    rows = []
    for name, entry in registry.tools.entries().items():
        try:
            tool = get_tool(name)
        except CookbookError:
            continue
        rows.append({
            "name": name,
            "plugin": entry.plugin,
            "description": tool.description,
            "arguments": argument_summary(tool.parameters),
            "parameters": tool.parameters,
            "timeout_s": tool.timeout_s,
        })
    return rows
