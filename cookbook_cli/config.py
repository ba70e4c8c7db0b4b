"""Recipe configuration: chz configs built from CLI options and `key=value`
words, checked, printed and stored.

- `make_config`: typer option values plus trailing `key=value` / `a.b=value`
  words become one chz config, with one-line errors;
- `RegistryFactory`: a field chosen by registry name (`dataset=no_robots`),
  optionally limited to entries of some kinds;
- `check_numbers`: every float field of a config (nested ones too) finite;
- `config_to_json` for config.json and --dry-run,
  `config_differences` for resume, `redact` for secrets.

Nothing heavy is imported at module level: chz only, which loads in ~40 ms.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz
from chz.factories import MetaFactory

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.plugins.registry import Registry

_SECRET_KEY = re.compile(r"(?i)(api[_-]?key|secret|password|passwd|credential|(^|_)token$|^authorization$)")


def redact(obj: Any) -> Any:
    """A copy of a JSON-like config with secret-looking values replaced."""
    if isinstance(obj, dict):
        return {k: ("***" if _SECRET_KEY.search(str(k)) and v not in (None, "") else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


class RegistryFactory(MetaFactory):
    """A chz meta-factory over a registry: `field=NAME` builds the entry registered
    as NAME (a chz class), `field.x=...` sets its fields, and with no name the
    `default` class is used. `kinds` limits the names to entries of those kinds
    (`used_by`, e.g. "`train sl`", names who asks in the error)."""

    def __init__(
        self, registry: Registry[Any], default: type, kinds: Sequence[str] | None = None, used_by: str = "",
        files: Mapping[str, str | None] | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.default = default
        self.kinds = tuple(kinds) if kinds else None
        self.used_by = used_by
        self.files = dict(files or {})

    def values_for(self, key: str, value: str) -> dict[str, Any]:
        """`field=VALUE` as blueprint values: a registered name, or (with
        `files`: suffix -> builder, "*" for any other file or a folder) a data
        file for the builder its suffix names (`dataset=my.jsonl` ->
        `dataset=conversations`, `dataset.path=my.jsonl`)."""
        if value in self.registry or not self.files:
            return {key: chz.Castable(value)}
        path = Path(value).expanduser()
        suffix = path.suffix.lower()
        if path.is_file() or path.is_dir() or suffix in (".jsonl", ".json", ".parquet", ".csv") or "/" in value:
            if not path.exists():
                raise CookbookError(f"dataset file {value!r} does not exist")
            builder = self.files.get(suffix) if not path.is_dir() else None
            builder = builder or self.files.get("*")
            if builder is None:
                raise CookbookError(
                    f"--dataset {value!r}: give a .jsonl file, or name a builder and its file (e.g. --dataset hh_rlhf dataset.path={value})"
                )
            return {key: chz.Castable(builder), f"{key}.path": str(path)}
        self.registry.get(value, kinds=self.kinds, used_by=self.used_by)  # unknown name: suggestions and the list
        return {key: chz.Castable(value)}

    def unspecified_factory(self) -> Any:
        return self.default

    def from_string(self, factory: str) -> Any:
        # unknown, or of another kind: a one-line error with suggestions
        return self.registry.get(factory, kinds=self.kinds, used_by=self.used_by).obj

    def perform_cast(self, value: str) -> Any:
        from chz.tiepin import CastError

        raise CastError(f"{value!r} is not a {self.registry.kind} name")


#: --dataset files of a supervised dataset: a .jsonl of conversations, any other data file or a folder for the hf builder.
SUPERVISED_FILES: dict[str, str | None] = {".jsonl": "conversations", "*": "hf"}


def registry_name_of(registry: Registry[Any], obj: Any) -> str | None:
    """The name under which `type(obj)` is registered, if any."""
    for name, entry in registry.entries().items():
        if entry.obj is type(obj):
            return name
    return None


def parse_overrides(words: Sequence[str], options: Sequence[str] = ()) -> dict[str, str]:
    """Trailing `key=value` words (`a.b=value` for nested fields). `options`: the
    command's option names, to tell a misplaced option from an unknown one."""
    out: dict[str, str] = {}
    for w in words:
        key, sep, value = w.partition("=")
        if w.startswith("-"):
            name = w.split("=", 1)[0]
            if name in options:
                raise CookbookError(f"option {name} comes after a config word: put options before the key=value words")
            close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise CookbookError(f"no such option: {name}.{hint} (see --help for the options and the config words)")
        if not sep or not key:
            raise CookbookError(f"unexpected argument {w!r}: config words look like key=value (see --help for the fields)")
        if key in out and out[key] != value:
            raise CookbookError(f"{key} is given twice ({key}={out[key]} and {w}); give it once")
        out[key] = value
    return out


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    first = re.sub(r"^Extraneous argument '([^']+)' to Blueprint for \S+( \(from [^)]*\))?", r"unknown config field '\1'", lines[0])
    keep = [first.rstrip(".")]
    for ln in lines[1:]:
        if ln.startswith("Did you mean") or ln.startswith("Could not cast") or "Missing required" in ln:
            keep.append(ln)
    return "; ".join(keep)


def field_at(cls: type, key: str) -> Any:
    """The chz field a dotted config key names (`teachers.0.prompts`), or None."""
    import typing

    fields = chz.chz_fields(cls)
    head, _, rest = key.partition(".")
    f = fields.get(head)
    if f is None or not rest:
        return f
    tp = f.final_type
    if typing.get_origin(tp) in (list, tuple) and typing.get_args(tp):
        index, _, rest = rest.partition(".")
        tp = typing.get_args(tp)[0]
        if not index.isdigit() or not rest:
            return None
    return field_at(tp, rest) if isinstance(tp, type) and chz.is_chz(tp) else None


def expand_values(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """String values of registry-chosen fields (`dataset=NAME` or a file) as
    the blueprint values that build them; the rest as given."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        f = field_at(cls, key)
        factory = getattr(f, "_meta_factory", None) if f is not None else None
        if isinstance(factory, RegistryFactory) and isinstance(value, str):
            out.update(factory.values_for(key, value))
        else:
            out[key] = value
    return out


def make_config(
    cls: type, options: Mapping[str, Any], words: Sequence[str] = (), option_names: Sequence[str] = (),
    flags: Mapping[str, str] | None = None, base: Mapping[str, Any] | None = None,
) -> Any:
    """Build chz config `cls` from `base` values (a stored run's), option
    values (None: not given) and trailing `key=value` words, which win over
    the values; with `flags` (key -> the command-line option that set it, as
    the CLI passes) a word that contradicts an option is refused naming both.
    Then check that every float in it is finite."""
    from chz.blueprint._entrypoint import EntrypointException

    values = expand_values(cls, {k: v for k, v in options.items() if v is not None})
    overrides = parse_overrides(words, option_names)
    for key, word in overrides.items():
        if flags and key in flags and str(values[key]) != word:
            raise CookbookError(f"{flags[key]} {values[key]} and {key}={word} both set {key}; give one")
    word_values: dict[str, Any] = {}
    for key, word in overrides.items():
        factory = getattr(field_at(cls, key), "_meta_factory", None)
        word_values.update(factory.values_for(key, word) if isinstance(factory, RegistryFactory) else {key: chz.Castable(word)})
    bp = chz.Blueprint(cls)
    if base:
        bp.apply(dict(base), layer_name="stored run")
    bp.apply(values, layer_name="options")
    bp.apply(word_values, layer_name="command line")
    try:
        config = bp.make()
    except CookbookError:
        raise
    except (EntrypointException, ValueError, TypeError) as e:
        raise CookbookError(f"invalid configuration: {_one_line(e)} (see --help for the fields)") from None
    check_numbers(config)
    return config


def check_numbers(config: Any, prefix: str = "") -> None:
    """Every float of a chz config (nested configs and dict values too) is finite:
    `--lr nan` would otherwise train nothing and exit 0."""
    for name in chz.chz_fields(type(config)):
        value = getattr(config, name)
        key = prefix + name
        if chz.is_chz(value):
            check_numbers(value, key + ".")
        elif isinstance(value, Mapping):
            for k, v in value.items():
                _check_finite(f"{key}.{k}", v)
        else:
            _check_finite(key, value)


def _check_finite(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise CookbookError(f"{key} must be a finite number, got {value}")


def _type_name(tp: Any) -> str:
    from chz.tiepin import type_repr

    try:
        return type_repr(tp)
    except Exception:  # noqa: BLE001 - help text must never fail
        return str(tp)


def config_fields(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every field of a chz class, nested ones flattened."""
    from chz.util import MISSING

    rows: list[tuple[str, str, str, str]] = []
    for name, f in chz.chz_fields(cls).items():
        key = prefix + name
        default = "(required)"
        tp = f.final_type
        made: Any = None
        if f._default is not MISSING:
            default = repr(f._default)
        elif f._default_factory is not MISSING:
            made = f._default_factory()
            default = type(made).__name__ if chz.is_chz(made) else repr(made)
        type_name = tp.__name__ if isinstance(tp, type) and chz.is_chz(tp) else _type_name(tp)
        choices = (f._metadata or {}).get("choices")
        rows.append((key, type_name, default, (f._doc or "") + (f" (one of {', '.join(choices)})" if choices else "")))
        if chz.is_chz(made):  # the default's fields (a polymorphic field's default class)
            rows.extend(config_fields(type(made), key + "."))
        elif isinstance(tp, type) and chz.is_chz(tp):
            rows.extend(config_fields(tp, key + "."))
    return rows


def config_to_json(config: Any, registries: Mapping[str, Registry[Any]] | None = None) -> dict[str, Any]:
    """A JSON-ready dict of a chz config; fields built from a registry also
    record the name they were registered under (`{"name": ..., **fields}`;
    `registry_name` when the object has a field called `name`)."""
    registries = registries or {}
    out: dict[str, Any] = {}
    for name in chz.chz_fields(type(config)):
        value = getattr(config, name)
        if chz.is_chz(value):
            nested = config_to_json(value)
            if name in registries:
                key = "registry_name" if "name" in nested else "name"
                nested = {key: registry_name_of(registries[name], value) or type(value).__qualname__, **nested}
            out[name] = nested
        elif isinstance(value, Path):
            out[name] = str(value)
        elif isinstance(value, Mapping):
            out[name] = dict(value)
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def print_dry_run(config_json: Mapping[str, Any]) -> None:
    """`--dry-run`: the resolved config as JSON on stdout."""
    import json
    import sys

    sys.stdout.write(json.dumps(redact(dict(config_json)), indent=2, ensure_ascii=False, default=str) + "\n")


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Sequence[str] = (), prefix: str = "") -> list[str]:
    """`key: old -> new` for every leaf that differs."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        full = prefix + key
        if full in ignore:
            continue
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs.extend(config_differences(a, b, ignore, full + "."))
        elif a != b:
            diffs.append(f"{full}: {a!r} -> {b!r}")
    return diffs


def values_from_json(cls: type, data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A stored config (config.json, as `config_to_json` wrote it) as blueprint
    values for `cls`: registry-built fields by their recorded name, nested
    configs and lists of them flattened to `a.b` / `a.0.b` keys. Keys that are
    not fields of `cls` (notes a recipe stored beside its config) are left out."""
    import typing

    out: dict[str, Any] = {}
    for name, f in chz.chz_fields(cls).items():
        if name not in data:
            continue
        value, key, tp = data[name], prefix + name, f.final_type
        if isinstance(f._meta_factory, RegistryFactory) and isinstance(value, Mapping):
            rest = dict(value)
            registered = rest.pop("registry_name", None) or rest.pop("name", None)
            if registered is not None:
                out[key] = chz.Castable(str(registered))
            out.update({f"{key}.{k}": v for k, v in rest.items()})
        elif isinstance(tp, type) and chz.is_chz(tp) and isinstance(value, Mapping):
            out.update(values_from_json(tp, value, key + "."))
        elif typing.get_origin(tp) is list and typing.get_args(tp) and chz.is_chz(typing.get_args(tp)[0]) and isinstance(value, list):
            for i, item in enumerate(value):
                out.update(values_from_json(typing.get_args(tp)[0], item, f"{key}.{i}."))
        elif isinstance(value, Mapping) or (value is None and dict in (typing.get_origin(tp), *map(typing.get_origin, typing.get_args(tp)))):
            # a dict field by its entries, so `engine_options.device=cpu` given again still applies
            out.update({f"{key}.{k}": v for k, v in (value or {}).items()})
        else:
            out[key] = value
    return out
