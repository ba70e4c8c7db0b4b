"""`Tool`: a function an agent may call, with its argument schema and time limit.

    from cookbook_cli.tools import tool

    @tool(timeout_s=5)
    def add(a: int, b: int) -> int:
        '''Add two integers.

        Args:
            a: the first addend
            b: the second addend
        '''
        return a + b

`add` is now a `Tool` named "add" whose schema says two required integers;
`add.fn` is the plain function. `tool(fn)` works as a call too, and a `Tool`
can be built directly with a hand-written schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from cookbook_cli.errors import CookbookError
from cookbook_cli.types import ToolSpec

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Tool:
    """A callable the model may invoke by `name`, described to it by
    `description` and `parameters` (the JSON schema of its keyword arguments).

    `fn` is sync or async and returns the result the model sees (a string, or
    anything JSON-serialisable); an exception it raises becomes an error
    result. `timeout_s` limits each call (None: no limit)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    fn: Callable[..., Any] = field(default=lambda: None, compare=False)
    timeout_s: float | None = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CookbookError(f"a tool needs a non-empty string name, got {self.name!r}")
        if not callable(self.fn):
            raise CookbookError(f"tool {self.name!r}: fn {self.fn!r} is not callable")
        if not isinstance(self.parameters, dict) or self.parameters.get("type", "object") != "object":
            raise CookbookError(f"tool {self.name!r}: parameters must be a JSON schema of type 'object'")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise CookbookError(f"tool {self.name!r}: timeout_s must be > 0 (or None), got {self.timeout_s!r}")

    def spec(self) -> ToolSpec:
        """The declaration renderers write into the prompt."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly (no validation, no time limit)."""
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> Any:
        # `@tool` replaces the function in its module with this Tool, so the function
        # no longer pickles by reference; the Tool does, as that module attribute.
        module, qualname = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", "")
        if module and "<" not in qualname and _import_attr(module, qualname) is self:
            return (_import_attr, (module, qualname))
        return (Tool, (self.name, self.description, self.parameters, self.fn, self.timeout_s))


def _import_attr(module: str, qualname: str) -> Any:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


@overload
def tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
         timeout_s: float | None = DEFAULT_TIMEOUT_S, parameters: dict[str, Any] | None = None) -> Tool: ...
@overload
def tool(fn: None = None, *, name: str | None = None, description: str | None = None,
         timeout_s: float | None = DEFAULT_TIMEOUT_S, parameters: dict[str, Any] | None = None) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    parameters: dict[str, Any] | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a `Tool` of a typed function: `@tool`, `@tool(timeout_s=2)` or `tool(fn)`.

    The name defaults to the function's, the description to its docstring's
    summary, the schema to one derived from its annotations and the `Args:`
    section of its docstring (`parameters=` overrides it)."""

    def make(f: Callable[..., Any]) -> Tool:
        from cookbook_cli.tools.schema import schema_from_function

        tool_name = name or getattr(f, "__name__", "")
        derived, summary = schema_from_function(f, f"tool {tool_name!r}") if parameters is None else (parameters, "")
        if description is None and parameters is not None:
            from cookbook_cli.tools.schema import docstring_parts

            summary = docstring_parts(f.__doc__)[0]
        return Tool(name=tool_name, description=description if description is not None else summary,
                    parameters=derived, fn=f, timeout_s=timeout_s)

    return make(fn) if fn is not None else make
