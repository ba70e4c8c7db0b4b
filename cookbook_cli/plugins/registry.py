"""Registries: what plugins registered through each hook, by name.

A registry is filled on first use by calling every plugin's hook
implementation with a `register` callback that knows which plugin is calling.
A hook that raises is reported in one line and that plugin's entries for the
hook are dropped; two plugins registering one name is an error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cookbook_cli.errors import CookbookError, UnknownNameError
from cookbook_cli.plugins import manager

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str
    plugin: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class Registry(Generic[T]):
    def __init__(self, hook: str, kind: str, list_command: str = "") -> None:
        self.hook = hook
        self.kind = kind
        self.list_command = list_command
        self._entries: dict[str, Entry[T]] | None = None

    def clear(self) -> None:
        self._entries = None

    def _collect(self) -> dict[str, Entry[T]]:
        pm = manager.load()
        entries: dict[str, Entry[T]] = {}
        caller = getattr(pm.hook, self.hook)
        # get_hookimpls() is in registration order: built-ins first.
        for impl in caller.get_hookimpls():
            mine: dict[str, Entry[T]] = {}
            plugin = impl.plugin_name

            def register(name: str, obj: T, description: str = "", **extra: Any) -> None:
                if not isinstance(name, str) or not name:
                    raise CookbookError(f"a {self.kind} name must be a non-empty string, got {name!r}")
                if name in mine:
                    raise CookbookError(f"{self.kind} {name!r} registered twice by plugin {plugin!r}")
                mine[name] = Entry(name, obj, description, plugin, extra)

            try:
                impl.function(register=register)
            except Exception as e:  # noqa: BLE001 - a broken plugin is reported and skipped
                info = manager.plugin_infos().get(plugin)
                manager.record_error(
                    manager.PluginLoadError(info.distribution if info else plugin, self.hook, f"{type(e).__name__}: {e}")
                )
                continue
            for name, entry in mine.items():
                if name in entries:
                    raise CookbookError(
                        f"{self.kind} {name!r} is registered by two plugins, {entries[name].plugin!r} and {plugin!r}: "
                        "uninstall one, or limit loading with COOKBOOK_LOAD_PLUGINS"
                    )
                entries[name] = entry
        return entries

    def entries(self) -> dict[str, Entry[T]]:
        if self._entries is None:
            self._entries = self._collect()
        return self._entries

    def names(self) -> list[str]:
        return list(self.entries())

    def __contains__(self, name: str) -> bool:
        return name in self.entries()

    def get(self, name: str) -> Entry[T]:
        entries = self.entries()
        if name not in entries:
            hint = f"Run `{self.list_command}` to see them all." if self.list_command else ""
            raise UnknownNameError(self.kind, name, entries, hint)
        return entries[name]


renderers: Registry[Any] = Registry("register_renderers", "renderer", "cookbook renderers list")
models: Registry[Any] = Registry("register_models", "model family", "cookbook models list")
envs: Registry[Any] = Registry("register_envs", "environment", "cookbook envs list")
dataset_builders: Registry[Any] = Registry("register_dataset_builders", "dataset", "cookbook datasets list")
loss_functions: Registry[Any] = Registry("register_loss_functions", "loss function", "cookbook losses list")
engines: Registry[Any] = Registry("register_engines", "engine", "cookbook engines list")
loggers: Registry[Any] = Registry("register_loggers", "logger", "cookbook loggers list")
evaluators: Registry[Any] = Registry("register_evaluators", "evaluator", "cookbook evaluators list")

ALL: dict[str, Registry[Any]] = {
    r.hook: r for r in (renderers, models, envs, dataset_builders, loss_functions, engines, loggers, evaluators)
}


def clear_caches() -> None:
    for r in ALL.values():
        r.clear()
