"""Fixtures for the recipe-contract tests: a conversations file and the
scaffolded recipe plugin registered in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


@pytest.fixture
def chats(tmp_path: Path) -> Path:
    """20 short conversations: at batch size 4 and test_size 0.1, 4 steps per epoch."""
    path = tmp_path / "my_chats.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"}, {"role": "assistant", "content": str(2 * i)}]} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path

@pytest.fixture
def recipe_plugin(tmp_path_factory: pytest.TempPathFactory, cookbook_plugin) -> str:  # type: ignore[no-untyped-def]
    """`cookbook plugins new recipe acme_lastturn`, its module imported and
    registered in-process (as its entry point would once installed). Returns its name."""
    import importlib

    from cookbook_cli.scaffold import new_plugin, plugin_names

    names = plugin_names("recipe", "acme_lastturn")
    root = new_plugin("recipe", names.name, tmp_path_factory.mktemp("plugin") / names.dist)
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(names.module)
        cookbook_plugin(module, name=names.dist)
        yield names.name
    finally:
        sys.path.remove(str(root))
        for mod in [m for m in sys.modules if m == names.module or m.startswith(names.module + ".")]:
            del sys.modules[mod]
