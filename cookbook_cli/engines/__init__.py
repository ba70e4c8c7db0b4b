"""Training/sampling engines behind one client protocol (see `protocol`).

    from cookbook_cli.engines import create_service_client
    service = create_service_client("local")            # or "tinker"
    tc = service.create_lora_training_client("random:tiny:llama3", rank=8)

Engines are plugins (`register_engines`); `create_service_client` looks one up
by name, so an unknown name lists the registered ones with suggestions.
Importing this package is cheap: torch, transformers and tinker load on use.
"""

from __future__ import annotations

from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.engines.protocol import APIFuture, CustomLossFn, SamplingClient, ServiceClient, TrainingClient

DEFAULT_ENGINE = "local"


def create_service_client(engine: str = DEFAULT_ENGINE, **options: Any) -> ServiceClient:
    """The ServiceClient of a registered engine; `options` go to its factory
    (local: device, dtype, checkpoint_dir, cache_dir; tinker: api_key, base_url)."""
    from cookbook_cli.plugins import registry

    return _create(engine, registry.engines.get(engine).obj, options)


def _create(engine: str, factory: Any, options: dict[str, Any]) -> ServiceClient:
    """Call an engine's factory; an option it does not take is one line, not a TypeError."""
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    try:
        return factory(**options)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        name = str(e).rsplit("argument", 1)[-1].strip(" '\"")
        known = [p for p in params if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
        hint = f" (it takes {', '.join(known)})" if known else ""
        raise CookbookError(f"engine {engine!r} has no option {name!r}{hint}; check engine_options.{name}") from None


def create_service_for_run(engine: str, run_dir: Any, options: dict[str, Any] | None = None) -> ServiceClient:
    """The ServiceClient a run trains with. An engine registered with
    `checkpoints_in_run_dir=True` keeps the run's checkpoints in its log directory."""
    from cookbook_cli.plugins import registry

    entry = registry.engines.get(engine)
    kwargs = dict(options or {})
    if entry.extra.get("checkpoints_in_run_dir") and "checkpoint_dir" not in kwargs:
        kwargs["checkpoint_dir"] = str(run_dir)
    return _create(engine, entry.obj, kwargs)


__all__ = [
    "APIFuture",
    "CustomLossFn",
    "DEFAULT_ENGINE",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
    "create_service_client",
    "create_service_for_run",
]
