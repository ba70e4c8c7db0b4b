"""Shared helpers for the logger tests: a recording logger plugin, and an
isolated environment for the trackers (offline, state in tmp_path)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from cookbook_cli import hookimpl
from cookbook_cli.loggers import Logger


# Test modules import `needs` from tracker_helpers (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).resolve().parent))


class Recorder(Logger):
    """Keeps every call, in order, in `calls` (a list shared by the test)."""

    def __init__(self, ctx: Any, calls: list[tuple], fail_on: str | None) -> None:
        self.calls = calls
        self.fail_on = fail_on
        calls.append(("open", dict(ctx.config), ctx.resuming, dict(ctx.options), dict(ctx.state)))
        ctx.state["opened"] = ctx.state.get("opened", 0) + 1
        if fail_on == "open":
            raise ConnectionError("network is unreachable")

    def _record(self, *call: Any) -> None:
        if self.fail_on == call[0]:
            raise RuntimeError(f"tracker broke in {call[0]}")
        self.calls.append(call)

    def log_metrics(self, step, metrics):
        self._record("metrics", step, dict(metrics))

    def log_checkpoint(self, record):
        self._record("checkpoint", dict(record))

    def log_html(self, name, path, step):
        self._record("html", name, Path(path).read_text(), step)

    def close(self, status="finished"):
        self.calls.append(("close", status))


class RecorderPlugin:
    """Registers `rec` (and `rec2`, `broken_*`) loggers that write into `calls`."""

    __name__ = "recorder-plugin"

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple]] = {}

    def _factory(self, name: str, fail_on: str | None = None):
        self.calls[name] = []
        return lambda ctx: Recorder(ctx, self.calls[name], fail_on)

    @hookimpl
    def register_loggers(self, register):
        register("rec", self._factory("rec"), "records calls", fields={"project": "a name"})
        register("rec2", self._factory("rec2"), "records calls too")
        register("broken_open", self._factory("broken_open", "open"), "cannot connect")
        register("broken_step", self._factory("broken_step", "metrics"), "fails at the first step")
        register("needs_pkg", self._factory("needs_pkg"), "needs a package", requires=("no_such_module_xyz",), extra="nothere")


@pytest.fixture
def recorder():
    from cookbook_cli.plugins import manager

    plugin = RecorderPlugin()
    name = manager.register_plugin(plugin, name="recorder-plugin")
    try:
        yield plugin
    finally:
        manager.unregister_plugin(name)


def _wandb_teardown() -> None:
    # W&B reads its environment once per process (its setup singleton): reset it
    # so each test's WANDB_* variables apply.
    import sys

    if "wandb" in sys.modules:
        sys.modules["wandb"].teardown()


@pytest.fixture
def tracker_env(monkeypatch, tmp_path):
    """Trackers offline, with their global state in tmp_path, and no keys."""
    _wandb_teardown()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_X_DISABLE_STATS", "true")  # no system-metrics sampler in tests
    for var in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(var, raising=False)
    yield home
    _wandb_teardown()
