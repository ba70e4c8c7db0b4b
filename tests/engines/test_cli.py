"""`cookbook engines list` and `cookbook losses list`, through typer's CliRunner."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner


@pytest.fixture
def run() -> Any:
    from cookbook_cli.cli.main import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_engines_list_json(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    result = run("engines", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"local", "tinker"}
    assert rows["local"]["status"] == "ready" and rows["local"]["plugin"] == "cookbook-cli"
    assert rows["tinker"]["status"] == "needs TINKER_API_KEY"
    monkeypatch.setenv("TINKER_API_KEY", "tml-test")
    rows = {r["name"]: r for r in json.loads(run("engines", "list", "--json").output)}
    assert rows["tinker"]["status"] == "ready"


def test_engines_list_table(run: Any) -> None:
    result = run("engines", "list")
    assert result.exit_code == 0 and "local" in result.output and "tinker" in result.output


def test_losses_list_marks_builtins(run: Any) -> None:
    result = run("losses", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {n for n, r in rows.items() if r["kind"] == "built-in"} == {"cross_entropy", "importance_sampling", "ppo", "cispo", "dro"}
    kinds = {n: r["kind"] for n, r in rows.items() if r["kind"] != "built-in"}
    assert kinds == {**dict.fromkeys(("sigmoid", "ipo", "hinge", "robust", "simpo", "orpo"), "preference"), "kto": "preference-unpaired"}
    assert rows["ppo"]["config"] == {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}
    assert rows["dro"]["config"] == {"beta": 0.05}
    assert rows["importance_sampling"]["inputs"] == ["target_tokens", "logprobs", "advantages"]


def test_losses_list_shows_plugin_losses(run: Any, cookbook_plugin: Any) -> None:
    from cookbook_cli import hookimpl

    class Plugin:
        @staticmethod
        @hookimpl
        def register_loss_functions(register: Any) -> None:
            register("pairwise", lambda data, lps: (lps[0].sum(), {}), "A toy pairwise loss.")

    cookbook_plugin(Plugin(), name="toy-losses")
    rows = {r["name"]: r for r in json.loads(run("losses", "list", "--json").output)}
    assert rows["pairwise"] == {"name": "pairwise", "kind": "custom", "plugin": "toy-losses", "description": "A toy pairwise loss."}
    table = run("losses", "list")
    assert table.exit_code == 0 and "pairwise" in table.output and "custom" in table.output


def test_cli_starts_without_heavy_imports() -> None:
    """Listing engines works, and does not import torch, transformers, tinker or peft."""
    import subprocess
    import sys

    code = (
        "import sys; from cookbook_cli.cli.main import main\n"
        "status = 0\n"
        "try: main(['engines', 'list', '--json'])\n"
        "except SystemExit as e: status = e.code or 0\n"
        "heavy = [m for m in ('torch', 'transformers', 'tinker', 'peft') if m in sys.modules]\n"
        "print('STATUS', status, 'HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    listing, summary = out.rsplit("\n", 2)[0], out.strip().splitlines()[-1]
    assert summary == "STATUS 0 HEAVY []"
    assert {r["name"] for r in json.loads(listing)} == {"local", "tinker"}
