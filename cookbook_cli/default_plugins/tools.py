"""Core's built-in tools, registered through `register_tools`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_tools")
def register_builtin_tools(register: Register) -> None:
    from cookbook_cli.tools.calculator import calculator
    from cookbook_cli.tools.python_tool import python_tool
    from cookbook_cli.tools.search import shipped_search_tool

    register("calculator", calculator, "Evaluate an arithmetic expression (+ - * / // % ** and parentheses), safely")
    register("python", python_tool, "Run a Python program in the sandbox (no network, time and memory limits); returns its output")
    register("search", shipped_search_tool(), "BM25 search over the small document collection shipped with cookbook")
