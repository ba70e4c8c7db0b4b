"""Registries: what plugins registered through each hook, by name.

A registry is filled on first use by calling every plugin's hook
implementation (by the argument names it declares) with a `register` callback
that knows which plugin is calling. A hook that raises is reported in one line
and that plugin's entries for the hook are dropped; two plugins registering one
name is an error naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cookbook_cli.errors import CookbookError, UnknownNameError, plural
from cookbook_cli.plugins import manager

T = TypeVar("T")

# A registered name is a word on the command line and a chz value
# (`--renderer NAME`, `dataset=NAME`): no spaces, `=` or `,`, no leading `-`.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/+-]*")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str
    plugin: str  # as `cookbook plugins list` names it: `cookbook-cli` for every built-in
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class Registry(Generic[T]):
    """The entries of one hook.

    `hook_args` are the hook's arguments beside `register`; each plugin gets
    only those its implementation declares. `default_kind` is the kind of an
    entry registered without `kind=` (see `get(name, kinds=...)`).
    `callable_obj`: registered objects must be callable (factories, classes,
    functions), except entries marked `builtin=True`, which an engine computes
    from the name (its own losses). `attrs`: attributes a registered object
    must have, `expects` says what to register instead (so this module need not
    import the feature class)."""

    def __init__(
        self,
        hook: str,
        kind: str,
        list_command: str = "",
        *,
        default_kind: str = "",
        callable_obj: bool = True,
        attrs: tuple[str, ...] = (),
        expects: str = "",
        hook_args: Mapping[str, Any] | None = None,
    ) -> None:
        self.hook = hook
        self.kind = kind
        self.list_command = list_command
        self.default_kind = default_kind
        self.callable_obj = callable_obj
        self.attrs = attrs
        self.expects = expects
        self.hook_args = dict(hook_args or {})
        self._entries: dict[str, Entry[T]] | None = None
        self._gathered: list[Entry[T]] | None = None

    def clear(self) -> None:
        self._entries = None
        self._gathered = None

    def _check(self, name: Any, obj: Any, description: Any, extra: Mapping[str, Any]) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise CookbookError(
                f"{self.kind} name {name!r} is not a name: use letters, digits and _ - . : / (no spaces), "
                "not starting with -"
            )
        if self.callable_obj and not callable(obj) and not extra.get("builtin"):
            raise CookbookError(f"{self.kind} {name!r} is registered with {obj!r}, which is not callable")
        missing = [a for a in self.attrs if not hasattr(obj, a)]
        if missing:
            raise CookbookError(
                f"{self.kind} {name!r} is registered with {obj!r}, which has no {', '.join(missing)}"
                + (f": register {self.expects}" if self.expects else "")
            )
        kind = extra.get("kind", "")
        if not isinstance(kind, str) or ("kind" in extra and not _NAME.fullmatch(kind)):
            raise CookbookError(f"{self.kind} {name!r}: kind= must be a word such as 'supervised', got {kind!r}")
        if not isinstance(description, str):
            raise CookbookError(f"{self.kind} {name!r}: the description must be a string, got {description!r}")

    def gathered(self) -> list[Entry[T]]:
        """What every plugin registered, in registration order (built-ins first),
        duplicates across plugins included: `cookbook plugins list` shows them
        even when a clash makes the registry unusable."""
        if self._gathered is None:
            self._gathered = self._gather()
        return self._gathered

    def _gather(self) -> list[Entry[T]]:
        gathered: list[Entry[T]] = []
        for impl in manager.hook_impls(self.hook):
            mine: dict[str, Entry[T]] = {}
            plugin = manager.owner(impl.plugin_name)

            def register(name: str, obj: T, description: str = "", **extra: Any) -> None:
                self._check(name, obj, description, extra)
                if name in mine:
                    raise CookbookError(f"{self.kind} {name!r} registered twice by plugin {plugin!r}")
                mine[name] = Entry(name, obj, description, plugin, extra)

            ok, _ = manager.call_impl(impl, self.hook, {**self.hook_args, "register": register})
            if ok:
                gathered.extend(mine.values())
        return gathered

    def conflicts(self) -> list[str]:
        """One message per name that two plugins registered."""
        first: dict[str, Entry[T]] = {}
        out = []
        for entry in self.gathered():
            if entry.name in first:
                out.append(
                    f"{self.kind} {entry.name!r} is registered by two plugins, {first[entry.name].plugin!r} and "
                    f"{entry.plugin!r}: uninstall one, or limit loading with COOKBOOK_LOAD_PLUGINS"
                )
            else:
                first[entry.name] = entry
        return out

    def _collect(self) -> dict[str, Entry[T]]:
        clash = self.conflicts()
        if clash:
            raise CookbookError(clash[0])
        return {e.name: e for e in self.gathered()}

    def kind_of(self, entry: Entry[T]) -> str:
        return str(entry.extra.get("kind", self.default_kind))

    def entries(self, kinds: Collection[str] | None = None) -> dict[str, Entry[T]]:
        """Every entry by name; with `kinds`, only entries of those kinds."""
        if self._entries is None:
            self._entries = self._collect()
        if kinds is None:
            return self._entries
        return {n: e for n, e in self._entries.items() if self.kind_of(e) in kinds}

    def names(self, kinds: Collection[str] | None = None) -> list[str]:
        return list(self.entries(kinds))

    def __contains__(self, name: str) -> bool:
        return name in self.entries()

    def get(self, name: str, kinds: Collection[str] | None = None, used_by: str = "") -> Entry[T]:
        """The entry `name`; with `kinds`, it must be of one of them.

        `used_by` names who asks, as the message should read it (e.g.
        "`train sl`"): "dataset 'hh_rlhf' is a preference dataset; `train sl`
        takes supervised datasets: conversations, hf (cookbook datasets list)"."""
        entries = self.entries()
        valid = self.entries(kinds)
        if name not in entries:
            hint = f"Run `{self.list_command}` to see them all." if self.list_command else ""
            raise UnknownNameError(self.kind, name, valid, hint)
        if name not in valid:
            assert kinds is not None
            wanted = " or ".join(kinds)
            names = ", ".join(valid) if valid else "none is registered"
            listing = f" ({self.list_command})" if self.list_command else ""
            raise CookbookError(
                f"{self.kind} {name!r} is a {self.kind_of(entries[name]) or 'kindless'} {self.kind}; "
                f"{used_by or 'this'} takes {wanted} {plural(self.kind)}: {names}{listing}"
            )
        return valid[name]

    def get_checked(self, name: str, accepts: Callable[[Any], bool], expected: str) -> Entry[T]:
        """The entry `name`, whose object `accepts` must approve; otherwise one
        line naming the plugin and what to register instead (`expected`)."""
        entry = self.get(name)
        if not accepts(entry.obj):
            raise CookbookError(
                f"{self.kind} {name!r} (plugin {entry.plugin!r}) is registered with {entry.obj!r}, which is not {expected}"
            )
        return entry


def chz_subclass_of(base: type) -> Callable[[Any], bool]:
    """`get_checked`'s test for a registered chz class deriving from `base`."""

    def accepts(obj: Any) -> bool:
        import chz

        return isinstance(obj, type) and issubclass(obj, base) and chz.is_chz(obj)

    return accepts


renderers: Registry[Any] = Registry("register_renderers", "renderer", "cookbook renderers list")
models: Registry[Any] = Registry(
    "register_models",
    "model family",
    "cookbook models list",
    callable_obj=False,
    # what core reads of a family
    attrs=("renderer", "patterns", "tokenizer", "models", "other_renderers", "chat", "context_length",
           "base_renderer", "base_patterns"),
    expects="a cookbook_cli.models.ModelFamily",
)
envs: Registry[Any] = Registry(
    "register_envs",
    "environment",
    "cookbook envs list",
    attrs=("local_defaults", "default_max_tokens"),
    expects="a chz subclass of cookbook_cli.rl.types.RLDatasetBuilder",
)
dataset_builders: Registry[Any] = Registry(
    "register_dataset_builders", "dataset", "cookbook datasets list", default_kind="supervised"
)
loss_functions: Registry[Any] = Registry("register_loss_functions", "loss function", "cookbook losses list")
engines: Registry[Any] = Registry("register_engines", "engine", "cookbook engines list")
loggers: Registry[Any] = Registry("register_loggers", "logger", "cookbook loggers list")
evaluators: Registry[Any] = Registry("register_evaluators", "evaluator", "cookbook evaluators list")
tools: Registry[Any] = Registry(
    "register_tools",
    "tool",
    "cookbook tools list",
    attrs=("fn", "parameters", "timeout_s"),
    expects="a cookbook_cli.tools.Tool (the cookbook_cli.tools.tool decorator makes one of a typed function)",
)

recipes: Registry[Any] = Registry(
    "register_recipes",
    "recipe",
    "cookbook train --help",
    callable_obj=False,
    attrs=("config", "train"),
    expects="a cookbook_cli.recipes.Recipe(config_class, train)",
)

ALL: dict[str, Registry[Any]] = {
    r.hook: r for r in (renderers, models, envs, dataset_builders, loss_functions, engines, loggers, evaluators, recipes, tools)
}


def clear_caches() -> None:
    for r in ALL.values():
        r.clear()


# -- plugin code failing when used ------------------------------------------------------------
#
# Registered objects are called from many places and make further plugin
# objects (a builder's envs, a renderer's methods) that core calls much later,
# often in other tasks or threads. So rather than wrapping each call site, an
# exception that reaches the CLI's boundary is attributed by where it was
# raised: the frames of its traceback (and of the exceptions it was raised
# from) that run a third-party plugin's code name that plugin, and the frame
# that runs a registered object (a factory, a builder class's method) names the
# hook and the name.


@dataclass(frozen=True)
class PluginFailure:
    distribution: str
    entries: tuple[tuple[str, str], ...]  # (hook, name) of the registered objects the failing code belongs to
    error: BaseException

    def line(self) -> str:
        where = ", ".join(f"{hook} {name!r}" for hook, name in self.entries)
        return (
            f"plugin {self.distribution}{f' ({where})' if where else ''} failed: {manager.describe_exception(self.error)}. "
            f"This is a bug in that plugin: report it to its authors (COOKBOOK_DEBUG=1 shows the traceback)"
        )


def _package(module: Any) -> str:
    return str(module or "").split(".")[0]


def _codes(obj: Any) -> set[Any]:
    """The code objects that running `obj` executes first: a function's, or a
    class's methods (its own and its bases' outside the standard library)."""
    import functools

    while isinstance(obj, functools.partial):
        obj = obj.func
    code = getattr(obj, "__code__", None)
    if code is not None:
        return {code}
    out = set()
    for cls in getattr(obj, "__mro__", ()):
        for member in vars(cls).values():
            func = getattr(member, "__func__", member)
            if getattr(func, "__code__", None) is not None:
                out.add(func.__code__)
    return out


def _frames(error: BaseException) -> list[Any]:
    """Every frame of `error`'s traceback and of the exceptions it came from, outermost first."""
    import traceback

    frames, seen, e = [], set(), error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        frames.extend(f for f, _ in traceback.walk_tb(e.__traceback__))
        e = e.__cause__ or e.__context__
    return frames


def attribute(error: BaseException) -> PluginFailure | None:
    """The third-party plugin whose code `error` was raised in (or passed
    through), or None for core's own code (a bug in cookbook)."""
    distributions: dict[str, str] = {}  # top-level package -> distribution
    for impl in manager.loaded_impls():
        dist = manager.distribution(impl.plugin_name)
        if dist != manager.BUILTIN_PLUGIN_NAME:
            distributions.setdefault(_package(getattr(impl.function, "__module__", "")), dist)
    if not distributions:
        return None
    frames = _frames(error)
    hit = next((_package(f.f_globals.get("__name__")) for f in reversed(frames)
                if _package(f.f_globals.get("__name__")) in distributions), None)
    if hit is None:
        return None
    codes = {f.f_code for f in frames}
    ran: list[tuple[str, str]] = []
    mine: list[tuple[str, str]] = []
    for reg in ALL.values():
        for entry in reg._gathered or ():  # only registries this command used
            obj = entry.obj
            module = getattr(obj, "__module__", None) or type(obj).__module__
            if entry.plugin == manager.BUILTIN_PLUGIN_NAME or _package(module) != hit:
                continue
            mine.append((reg.hook, entry.name))
            if codes & _codes(obj):
                ran.append((reg.hook, entry.name))
    return PluginFailure(distributions[hit], tuple(ran or (mine if len(mine) == 1 else [])), error)
