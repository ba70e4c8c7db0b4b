"""JSON schemas of tool arguments: derived from a typed Python signature, and checked.

`schema_from_function(fn)` reads the parameters' annotations (str, int,
float, bool, list[X], dict, Literal[...], Enum subclasses, `X | None`) and the
Google-style docstring (`Args:` section) into an OpenAI function's
`parameters` object plus the function's description. `validate_arguments`
checks call arguments against such a schema (the subset of JSON Schema tool
specs use: type, properties, required, additionalProperties, enum, items,
minimum/maximum), returning one line per problem.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from cookbook_cli.errors import CookbookError

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$")


def type_schema(annotation: Any, where: str) -> dict[str, Any]:
    """The JSON schema of one Python annotation; an unsupported one is an error naming `where`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if annotation is Any:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [m.value for m in annotation]
        return {"type": _SCALARS.get(type(values[0]), "string"), "enum": values} if values else {}
    if origin is typing.Literal:
        kinds = {_SCALARS.get(type(a)) for a in args}
        out: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1 and None not in kinds:
            out["type"] = kinds.pop()
        return out
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return type_schema(rest[0], where)
        return {"anyOf": [type_schema(a, where) for a in rest]}
    if origin in (list, tuple, set, frozenset, typing.Sequence, typing.MutableSequence):
        item = args[0] if args else None
        return {"type": "array", **({"items": type_schema(item, where)} if item is not None else {})}
    if origin is dict or origin is typing.Mapping:
        return {"type": "object"}
    raise CookbookError(
        f"{where}: cannot describe type {annotation!r} in JSON schema; use str, int, float, bool, list[...], dict, "
        "Literal[...] or an Enum, or pass parameters= explicitly"
    )


def docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {argument: its description}) from a Google-style docstring.

    The description is the text before the first section header; each argument
    of the `Args:` section is `name: text` or `name (type): text`, continued on
    more-indented lines."""
    text = inspect.cleandoc(doc or "")
    description: list[str] = []
    args: dict[str, list[str]] = {}
    section = None
    current: str | None = None
    arg_indent = None
    for line in text.splitlines():
        header = _SECTION.match(line.strip())
        if header and not line.startswith((" ", "\t")):
            section = header.group(1)
            current = None
            arg_indent = None
            continue
        if section is None:
            description.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        m = _ARG_LINE.match(line.strip())
        if m and (arg_indent is None or indent <= arg_indent):
            arg_indent = indent
            current = m.group(1).lstrip("*")
            args[current] = [m.group(2).strip()]
        elif current is not None:
            args[current].append(line.strip())
    summary = " ".join(" ".join(description).split())
    return summary, {k: " ".join(" ".join(v).split()) for k, v in args.items()}


def schema_from_function(fn: Callable[..., Any], where: str) -> tuple[dict[str, Any], str]:
    """(parameters schema, description) of `fn` from its signature and docstring.
    Every parameter needs an annotation; those without a default are required."""
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as e:  # an annotation naming something undefined
        raise CookbookError(f"{where}: cannot read the type annotations: {e}") from None
    description, arg_docs = docstring_parts(fn.__doc__)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, p in signature.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.POSITIONAL_ONLY:
            raise CookbookError(f"{where}: parameter {name!r} is positional-only; tools are called with keywords")
        if name not in hints:
            raise CookbookError(f"{where}: parameter {name!r} has no type annotation (the argument schema comes from it)")
        prop = type_schema(hints[name], f"{where}, parameter {name!r}")
        if name in arg_docs and arg_docs[name]:
            prop["description"] = arg_docs[name]
        if p.default is p.empty:
            required.append(name)
        elif p.default is None or isinstance(p.default, (str, int, float, bool)):
            prop["default"] = p.default.value if isinstance(p.default, enum.Enum) else p.default
        properties[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        schema["additionalProperties"] = False
    return schema, description


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def validate_arguments(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """What is wrong with `value` under `schema`, one line per problem (empty: valid);
    each names the argument (`path`) it is about."""
    at = f"{path}: " if path else ""
    problems: list[str] = []
    if "anyOf" in schema:
        if all(validate_arguments(value, s, path) for s in schema["anyOf"]):
            problems.append(f"{at}{_short(value)} matches none of the allowed forms")
        return problems
    wanted = schema.get("type")
    if wanted is not None:
        kinds = wanted if isinstance(wanted, list) else [wanted]
        if not any(_JSON_TYPES.get(k, lambda v: True)(value) for k in kinds):
            return [f"{at}expected {' or '.join(kinds)}, got {_json_type(value)} {_short(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}{_short(value)} is not one of {', '.join(_short(v) for v in schema['enum'])}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{at}{value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{at}{value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                problems.append(f"{at}missing required argument {name!r}")
        for name, v in value.items():
            if name in props:
                problems.extend(validate_arguments(v, props[name], f"{path}.{name}" if path else name))
            elif schema.get("additionalProperties") is False:
                allowed = ", ".join(props) or "none"
                problems.append(f"{at}unexpected argument {name!r} (arguments: {allowed})")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            problems.extend(validate_arguments(v, schema["items"], f"{path or 'arguments'}[{i}]"))
    return problems


def _json_type(value: Any) -> str:
    return next((k for k, ok in _JSON_TYPES.items() if ok(value)), type(value).__name__)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
