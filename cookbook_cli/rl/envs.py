"""Looking environments up in the `register_envs` registry.

A plugin registers an environment as `register(name, BuilderClass, description)`
where `BuilderClass` is a chz subclass of `RLDatasetBuilder`; its fields are
the env's options (`env.FIELD=VALUE` on the command line).
"""

from __future__ import annotations

from typing import Any

from cookbook_cli.errors import CookbookError


def get_env_builder_class(name: str) -> type:
    """The RLDatasetBuilder class registered as `name` (unknown names get suggestions)."""
    from cookbook_cli.plugins import registry
    from cookbook_cli.rl.types import RLDatasetBuilder

    expected = "a chz subclass of cookbook_cli.rl.types.RLDatasetBuilder"
    return registry.envs.get_checked(name, registry.chz_subclass_of(RLDatasetBuilder), expected).obj


def env_options(cls: type) -> list[dict[str, Any]]:
    """The chz fields of a builder class: name, type, default and doc."""
    import chz
    from chz.util import MISSING

    out = []
    for f in chz.chz_fields(cls).values():
        if f._default is not MISSING:
            default: Any = f._default
        elif f._default_factory is not MISSING:
            default = f._default_factory()
        else:
            default = "(required)"
        type_name = getattr(f.final_type, "__name__", None) or str(f.final_type)
        out.append({"name": f.logical_name, "type": type_name, "default": _jsonable(default), "doc": f._doc or ""})
    return out


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return repr(v)


def list_envs() -> list[dict[str, Any]]:
    """Every registered env: name, description, plugin and options."""
    from cookbook_cli.plugins import registry

    rows = []
    for name, entry in registry.envs.entries().items():
        try:
            options = env_options(get_env_builder_class(name))
        except CookbookError:
            options = []
        rows.append({"name": name, "description": entry.description, "plugin": entry.plugin, "options": options})
    return rows
