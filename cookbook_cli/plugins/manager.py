"""The one plugin manager, loaded lazily on first use.

Core's built-ins are plugin modules listed by name in `DEFAULT_PLUGINS` (as
llm does), each carrying its own `@hookimpl`s, registered through the same
hooks as any third-party package; this package imports none of them itself.
Entry points in the `cookbook` group are loaded one by one so that a broken
plugin is reported and skipped instead of breaking the CLI.
`COOKBOOK_LOAD_PLUGINS=a,b` limits autoloading to those distributions (or entry
point names); set and empty, it loads none.

Every hook implementation is called through `call_impl`, by the argument names
it declares (pluggy's way, so a spec can grow an argument without breaking old
plugins), and a plugin that raises, or calls `sys.exit()`, is reported by
distribution and skipped.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from cookbook_cli.errors import CookbookError
from cookbook_cli.plugins import spec

ENTRY_POINT_GROUP = "cookbook"
BUILTIN_PLUGIN_NAME = "cookbook-cli"

# Core's own plugins: modules with `@hookimpl` functions, imported on first use
# of the plugin manager. Each keeps its heavy imports inside its functions.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "cookbook_cli.default_plugins.renderers",
    "cookbook_cli.default_plugins.models",
    "cookbook_cli.default_plugins.datasets",
    "cookbook_cli.default_plugins.engines",
    "cookbook_cli.default_plugins.losses",
    "cookbook_cli.default_plugins.envs",
    "cookbook_cli.default_plugins.loggers",
    "cookbook_cli.default_plugins.evaluators",
    "cookbook_cli.default_plugins.tools",
    "cookbook_cli.default_plugins.recipes",
)


@dataclass
class PluginInfo:
    """Where a plugin came from. The built-ins are one plugin, `cookbook-cli`,
    made of the modules in `modules`."""

    name: str
    distribution: str
    version: str
    builtin: bool = False
    modules: tuple[str, ...] = ()


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class PluginLoadError:
    """A plugin that failed: at import (`entry_point`) or in one hook (`hook`)."""

    distribution: str
    entry_point: str
    error: str
    hook: str = ""

    def line(self) -> str:
        if self.hook:
            text = f"plugin {self.distribution!r} failed in hook {self.hook!r}, whose registrations were skipped: {self.error}"
        else:
            text = f"plugin {self.distribution!r} (entry point {self.entry_point!r}) failed to load and was skipped: {self.error}"
        return _one_line(text)


@dataclass
class _State:
    pm: pluggy.PluginManager
    loaded: bool = False
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # pluggy plugin name -> PluginInfo name
    errors: list[PluginLoadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warned: set[tuple[str, str]] = field(default_factory=set)


def _new_state() -> _State:
    pm = pluggy.PluginManager(spec.PROJECT)
    pm.add_hookspecs(spec)
    return _State(pm=pm)


_state = _new_state()


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _allowed() -> set[str] | None:
    raw = os.environ.get("COOKBOOK_LOAD_PLUGINS")
    if raw is None:
        return None
    return {_normalize(n) for n in raw.split(",") if n.strip()}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_exception(e: BaseException) -> str:
    """One line for an exception raised by plugin code."""
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r})" if e.code is not None else "it called sys.exit()"
    text = str(e)
    if isinstance(e, CookbookError):  # core's own message about what the plugin did
        return _one_line(text)
    return _one_line(f"{type(e).__name__}: {text}" if text else type(e).__name__)


def _report(err: PluginLoadError) -> None:
    _state.errors.append(err)
    print(f"Warning: {err.line()}", file=sys.stderr)


def _warn(line: str) -> None:
    _state.warnings.append(line)
    print(f"Warning: {line}", file=sys.stderr)


def load() -> pluggy.PluginManager:
    """Return the plugin manager, loading built-ins and entry points once."""
    if _state.loaded:
        return _state.pm
    _state.loaded = True
    from cookbook_cli import __version__

    for module in DEFAULT_PLUGINS:
        _state.pm.register(importlib.import_module(module), name=module)
        _state.owner[module] = BUILTIN_PLUGIN_NAME
    _state.infos[BUILTIN_PLUGIN_NAME] = PluginInfo(
        BUILTIN_PLUGIN_NAME, BUILTIN_PLUGIN_NAME, __version__, builtin=True, modules=DEFAULT_PLUGINS
    )
    allowed = _allowed()
    installed: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.name
        version = ep.dist.version if ep.dist is not None else "?"
        installed |= {_normalize(dist), _normalize(ep.name)}
        if allowed is not None and _normalize(dist) not in allowed and _normalize(ep.name) not in allowed:
            continue
        plugin_name = dist if ep.name in (dist, _normalize(dist)) else f"{dist}:{ep.name}"
        if _state.pm.get_plugin(plugin_name) is not None:
            continue  # the same distribution seen twice on sys.path
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a chatty plugin must not corrupt --json output
                obj = ep.load()
            _state.pm.register(obj, name=plugin_name)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - any failure of third-party code (sys.exit too) is reported, not fatal
            _report(PluginLoadError(dist, ep.value, describe_exception(e)))
            continue
        _state.infos[plugin_name] = PluginInfo(plugin_name, dist, version)
        _state.owner[plugin_name] = plugin_name
        if not _state.pm.get_hookcallers(obj):
            _warn(
                f"plugin {dist!r} (entry point {ep.value!r}) implements no cookbook hook: does the entry point "
                "name the module whose functions are marked @hookimpl?"
            )
    for name in sorted((allowed or set()) - installed):
        _warn(
            f"COOKBOOK_LOAD_PLUGINS names {name!r}, which no installed distribution provides "
            "(`pip install` it, or see `cookbook plugins list` with COOKBOOK_LOAD_PLUGINS unset)"
        )
    check_pending()
    return _state.pm


def check_pending() -> list[str]:
    """Warn, once per plugin and name, about hook implementations that match no
    hook spec (a misspelt hook is never called); returns the warnings so far."""
    pm = _state.pm
    hooks = [n for n in pm.hook.__dict__ if not n.startswith("_") and getattr(pm.hook, n).has_spec()]
    for name in list(pm.hook.__dict__):
        caller = getattr(pm.hook, name)
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            plugin = owner(impl.plugin_name)
            if impl.optionalhook or (plugin, name) in _state.warned:
                continue
            _state.warned.add((plugin, name))
            close = difflib.get_close_matches(name, hooks, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"the hooks are: {', '.join(sorted(hooks))}"
            _warn(f"plugin {plugin!r} implements {name!r}, which is not a cookbook hook and is never called; {hint}")
    return list(_state.warnings)


def owner(plugin_name: str) -> str:
    """The plugin (as listed by `plugin_infos`) that a pluggy plugin name belongs
    to: `cookbook-cli` for every built-in module."""
    return _state.owner.get(plugin_name, plugin_name)


def distribution(plugin_name: str) -> str:
    info = _state.infos.get(owner(plugin_name))
    return info.distribution if info else owner(plugin_name)


def hook_impls(hook: str) -> list[Any]:
    """The implementations of `hook`, in registration order (built-ins first)."""
    return list(getattr(load().hook, hook).get_hookimpls())


def call_impl(impl: Any, hook: str, kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
    """Call one plugin's implementation of `hook` with the arguments it declares.

    Returns (True, its result), or (False, None) after reporting the plugin by
    distribution when it raised (anything but KeyboardInterrupt, sys.exit()
    included)."""
    plugin = distribution(impl.plugin_name)
    if impl.hookwrapper or impl.wrapper:
        _report(PluginLoadError(plugin, impl.plugin_name, "a hook wrapper cannot register anything: drop wrapper=True", hook))
        return False, None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a chatty plugin must not corrupt --json output
            result = impl.function(*[kwargs[a] for a in impl.argnames])
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - a broken plugin is reported and skipped
        _report(PluginLoadError(plugin, impl.plugin_name, describe_exception(e), hook))
        return False, None
    if result is not None:
        warn(
            f"plugin {plugin!r}: its {hook} returned {type(result).__name__} {_short(result)}, which is ignored; "
            "hooks register through their `register` (or `app`) argument"
        )
    return True, result


def register_plugin(obj: Any, name: str | None = None) -> str:
    """Register a plugin object in-process (tests, notebooks). Returns its name."""
    pm = load()
    plugin_name = pm.register(obj, name=name)
    assert plugin_name is not None
    _state.infos[plugin_name] = PluginInfo(plugin_name, plugin_name, "(in-process)")
    _state.owner[plugin_name] = plugin_name
    check_pending()
    _invalidate()
    return plugin_name


def unregister_plugin(name_or_obj: Any) -> None:
    pm = load()
    name = name_or_obj if isinstance(name_or_obj, str) else pm.get_name(name_or_obj)
    if isinstance(name_or_obj, str):
        pm.unregister(name=name_or_obj)
    else:
        pm.unregister(name_or_obj)
    if name:
        _state.infos.pop(name, None)
        _state.owner.pop(name, None)
        _state.warned = {w for w in _state.warned if w[0] != name}
    _invalidate()


def _invalidate() -> None:
    from cookbook_cli.plugins import registry

    registry.clear_caches()


def reset() -> None:
    """Forget every loaded plugin; the next lookup loads them again (for tests)."""
    global _state
    _state = _new_state()
    _invalidate()


def plugin_infos() -> dict[str, PluginInfo]:
    load()
    return dict(_state.infos)


def load_errors() -> list[PluginLoadError]:
    load()
    return list(_state.errors)


def load_warnings() -> list[str]:
    """Warnings about plugins that loaded (e.g. a misspelt hook name)."""
    load()
    return list(_state.warnings)


def record_error(err: PluginLoadError) -> None:
    """Report a plugin that failed outside `call_impl`; it is skipped."""
    _report(err)


def warn(line: str) -> None:
    """Report something odd about a plugin that still loaded (one line)."""
    _warn(_one_line(line))


def loaded_impls() -> list[Any]:
    """Every hook implementation of the loaded plugins (none if none are loaded yet)."""
    if not _state.loaded:
        return []
    return [impl for caller in vars(_state.pm.hook).values() if hasattr(caller, "get_hookimpls")
            for impl in caller.get_hookimpls()]
