"""Core's built-in plugins live in `cookbook_cli/default_plugins/` and hold only
hook implementations; `cookbook_cli/plugins/` imports no feature package."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import cookbook_cli
from cookbook_cli.plugins.manager import DEFAULT_PLUGINS
from cookbook_cli.plugins.spec import PROJECT

PACKAGE = Path(cookbook_cli.__file__).parent


def test_default_plugin_modules_hold_only_hook_implementations():
    folder = [m for m in DEFAULT_PLUGINS if m.startswith("cookbook_cli.default_plugins.")]
    on_disk = {f"cookbook_cli.default_plugins.{p.stem}" for p in (PACKAGE / "default_plugins").glob("*.py") if p.stem != "__init__"}
    assert on_disk <= set(DEFAULT_PLUGINS), on_disk - set(DEFAULT_PLUGINS)
    for name in folder:
        module = importlib.import_module(name)
        functions = [f for _, f in inspect.getmembers(module, inspect.isfunction) if f.__module__ == name]
        assert functions, name
        for f in functions:
            assert hasattr(f, f"{PROJECT}_impl"), f"{name}.{f.__name__} is not a @hookimpl"


def test_the_plugins_package_imports_no_feature_package():
    allowed = {"cookbook_cli", "cookbook_cli.errors", "cookbook_cli.plugins", "cookbook_cli.plugins.spec", "cookbook_cli.plugins.manager",
               "cookbook_cli.plugins.registry"}
    for path in (PACKAGE / "plugins").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cookbook_cli"):
                assert node.module in allowed, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("cookbook_cli") or alias.name in allowed, f"{path.name} imports {alias.name}"
