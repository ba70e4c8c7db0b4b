"""Model families: which renderer and tokenizer a model name goes with.

Plugins register a `ModelFamily` through `register_models`; `model_info(name)`
answers for a family name or any model name matching a family's patterns. A
name is *known* when it is a family name, a model some family lists, or a model
folder here (a directory, or an entry of the Hugging Face cache); any other name
that matches a family's patterns (a new fine-tune, or a typo) gets the family's
defaults, marked unknown with the closest known model.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from cookbook_cli.errors import UnknownNameError
from cookbook_cli.plugins.spec import Register, hookimpl


@dataclass(frozen=True)
class ModelFamily:
    """What core needs to know about a family of models."""

    renderer: str  # the recommended renderer
    patterns: tuple[str, ...]  # fnmatch patterns over model names, case-insensitive
    tokenizer: str | None = None  # tokenizer source; None: the model name itself
    models: tuple[str, ...] = ()  # well-known model names, listed by `models list`
    other_renderers: tuple[str, ...] = ()
    chat: bool = True  # instruction-tuned (vs base)
    context_length: int | None = None
    base_renderer: str | None = None  # for base (non-chat) models of the family
    base_patterns: tuple[str, ...] = field(default=())
    # The learning-rate rule (see learning_rates): the family's calibrated exponent
    # over the hidden size, and the hidden sizes of its well-known models.
    lr_exponent: float | None = None
    hidden_sizes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    plugin: str
    renderer: str
    tokenizer: str
    chat: bool
    context_length: int | None
    other_renderers: tuple[str, ...]
    known: bool = True  # see the module docstring
    closest: str | None = None  # for an unknown name: the closest known model, if any is close


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def hf_cache_model_dir(name: str) -> Path:
    """Where the Hugging Face cache keeps repo `name` (its snapshots/ hold the files)."""
    return hf_cache_dir() / f"models--{name.replace('/', '--')}"


def is_local_model(name: str) -> bool:
    """A model folder, or a model in the Hugging Face cache (no network)."""
    try:
        return Path(name).expanduser().is_dir() or hf_cache_model_dir(name).is_dir()
    except OSError:  # a name too long for a path, say
        return False


def closest_model(name: str, candidates: list[str]) -> str | None:
    """The candidate closest to `name`, comparing whole names and the parts after
    the organisation (so 'Llama-3.1-8B-Instrct' finds 'meta-llama/Llama-3.1-8B-Instruct')."""

    def score(candidate: str) -> float:
        a, b = name.lower(), candidate.lower()
        whole = difflib.SequenceMatcher(None, a, b).ratio()
        return max(whole, difflib.SequenceMatcher(None, a.rsplit("/", 1)[-1], b.rsplit("/", 1)[-1]).ratio())

    best = max(candidates, key=score, default=None)
    return best if best is not None and score(best) >= 0.6 else None


def _family_entry(name: str) -> tuple[str, Any]:
    """(family name, registry entry) of the family a model or family name belongs
    to: the first whose patterns match."""
    from cookbook_cli.plugins import registry

    entries = registry.models.entries()
    for fam_name, entry in entries.items():
        if name == fam_name or _matches(name, entry.obj.patterns):
            return fam_name, entry
    listed = [m for e in entries.values() for m in e.obj.models]
    raise UnknownNameError("model", name, list(entries) + listed, "Run `cookbook models list` to see the known families.")


def family_of(name: str) -> tuple[str, ModelFamily]:
    fam_name, entry = _family_entry(name)
    return fam_name, entry.obj


def model_info(name: str) -> ModelInfo:
    """Family, recommended renderer and tokenizer source of a model or family name."""
    from cookbook_cli.plugins import registry

    fam_name, entry = _family_entry(name)
    fam: ModelFamily = entry.obj
    listed = [m for e in registry.models.entries().values() for m in e.obj.models]
    is_family = name == fam_name
    base = (not is_family) and bool(fam.base_patterns) and _matches(name, fam.base_patterns)
    renderer = fam.base_renderer if base and fam.base_renderer else fam.renderer
    model_name = fam.models[0] if is_family and fam.models else name
    known = is_family or name.lower() in {m.lower() for m in listed} or is_local_model(name)
    return ModelInfo(
        name=model_name,
        family=fam_name,
        plugin=entry.plugin,
        renderer=renderer,
        tokenizer=fam.tokenizer or model_name,
        chat=fam.chat and not base,
        context_length=fam.context_length,
        other_renderers=tuple(r for r in (fam.renderer, *fam.other_renderers) if r != renderer),
        known=known,
        closest=None if known else closest_model(name, list(fam.models) or listed),
    )


def tokenizer_for_renderer(renderer: str) -> str:
    """The tokenizer of the first model family that uses `renderer` (unknown
    renderer names fail with suggestions)."""
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.plugins import registry

    registry.renderers.get(renderer)
    for name, entry in registry.models.entries().items():
        fam: ModelFamily = entry.obj
        if renderer in (fam.renderer, fam.base_renderer, *fam.other_renderers):
            return model_info(name).tokenizer
    raise CookbookError(
        f"no model family uses renderer {renderer!r}, so its tokenizer is unknown; pass --model "
        "(a model folder or Hub id, or random:<shape>:<tokenizer> on the local engine)"
    )


# -- defaults a recipe fills in: model, renderer, tokenizer, learning rate --------------------

DEFAULT_RENDERER = "llama3"


@dataclass(frozen=True)
class ModelSpec:
    """What an engine says of a model name only it understands (see default_plugins/engines)."""

    tokenizer: str  # where the tokenizer comes from
    label: str  # short name for run directories
    from_scratch: bool = False  # randomly initialised: it needs a high learning rate


def _engine_extra(engine: str, key: str) -> Any:
    from cookbook_cli.plugins import registry

    return registry.engines.get(engine).extra.get(key)  # unknown engines fail here, with suggestions


def model_spec(model: str, engine: str) -> ModelSpec | None:
    describe = _engine_extra(engine, "model_spec")
    return describe(model) if callable(describe) else None


def recommended_model_for_renderer(renderer: str) -> str:
    """The first well-known model whose recommended renderer is `renderer`."""
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.plugins import registry

    fallback = None
    for entry in registry.models.entries().values():
        fam: ModelFamily = entry.obj
        for m in fam.models:
            if model_info(m).renderer == renderer:
                return m
            if fallback is None and renderer in (fam.renderer, fam.base_renderer, *fam.other_renderers):
                fallback = m
    if fallback is None:
        raise CookbookError(f"no known model uses renderer {renderer!r}; pass --model")
    return fallback


def tokenizer_for_model(model: str, engine: str) -> str:
    """Where the tokenizer of `model` comes from: what the engine says of a name
    only it knows, a local model folder, or the model family's tokenizer source
    (a Hub id: its own)."""
    from pathlib import Path

    spec = model_spec(model, engine)
    if spec is not None:
        return spec.tokenizer
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    try:
        return model_info(model).tokenizer
    except UnknownNameError:
        return model


def renderer_for_model(model: str, engine: str) -> str:
    """The recommended renderer of `model` (of its tokenizer's family for names an engine describes)."""
    from cookbook_cli.errors import CookbookError

    spec = model_spec(model, engine)
    try:
        return model_info(spec.tokenizer if spec is not None else model).renderer
    except UnknownNameError:
        raise CookbookError(f"no known model family matches {model!r}, so its renderer is unknown; pass --renderer") from None


def resolve_model_and_renderer(engine: str, model: str | None, renderer: str | None) -> tuple[str, str]:
    """Fill in --model and --renderer: with no model, the engine's default for the
    renderer (else the renderer's recommended model); the renderer follows the model."""
    from cookbook_cli.plugins import registry

    if renderer is not None:
        registry.renderers.get(renderer)  # unknown names fail here, with suggestions
    if model is None:
        renderer = renderer or DEFAULT_RENDERER
        default_model = _engine_extra(engine, "default_model")
        model = default_model(renderer) if callable(default_model) else recommended_model_for_renderer(renderer)
    if renderer is None:
        renderer = renderer_for_model(model, engine)
        registry.renderers.get(renderer)
    return model, renderer


def model_label(model: str, engine: str) -> str:
    spec = model_spec(model, engine)
    return spec.label if spec is not None else model


#: Models trained from scratch (the local engine's random: shapes) need a far higher rate.
FROM_SCRATCH_LR = 1e-2


def default_learning_rate(model: str, engine: str, lora_rank: int) -> float:
    """A starting learning rate: high for models trained from scratch, else the
    model family's rule over the hidden size (`learning_rates`), LoRA or full."""
    from cookbook_cli.learning_rates import learning_rate_default

    spec = model_spec(model, engine)
    if spec is not None and spec.from_scratch:
        return FROM_SCRATCH_LR
    return learning_rate_default(spec.tokenizer if spec is not None else model).for_rank(lora_rank)


@hookimpl(specname="register_models")
def register_builtin_models(register: Register) -> None:
    register(
        "llama3",
        ModelFamily(
            renderer="llama3",
            patterns=("*llama-3*", "*llama3*"),
            tokenizer=None,
            models=(
                "meta-llama/Llama-3.2-1B-Instruct",
                "meta-llama/Llama-3.2-3B-Instruct",
                "meta-llama/Llama-3.1-8B-Instruct",
                "meta-llama/Llama-3.1-70B-Instruct",
                "meta-llama/Llama-3.3-70B-Instruct",
                "meta-llama/Llama-3.2-1B",
                "meta-llama/Llama-3.1-8B",
            ),
            other_renderers=("role_colon",),
            context_length=131072,
            base_renderer="role_colon",
            base_patterns=("*llama-3.?-[0-9]*b", "*llama-3-[0-9]*b", "*meta-llama-3-[0-9]*b"),
            lr_exponent=0.781,
            hidden_sizes=(
                ("meta-llama/Llama-3.2-1B-Instruct", 2048),
                ("meta-llama/Llama-3.2-1B", 2048),
                ("meta-llama/Llama-3.2-3B-Instruct", 3072),
                ("meta-llama/Llama-3.1-8B-Instruct", 4096),
                ("meta-llama/Llama-3.1-8B", 4096),
                ("meta-llama/Llama-3.1-70B-Instruct", 8192),
                ("meta-llama/Llama-3.3-70B-Instruct", 8192),
            ),
        ),
        "Meta Llama 3.x (tokenizer also offline from llama-models)",
    )
