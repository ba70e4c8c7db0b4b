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


def _hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def is_local_model(name: str) -> bool:
    """A model folder, or a model in the Hugging Face cache (no network)."""
    try:
        return Path(name).expanduser().is_dir() or (_hf_cache_dir() / f"models--{name.replace('/', '--')}").is_dir()
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


def model_info(name: str) -> ModelInfo:
    """Family, recommended renderer and tokenizer source of a model or family name."""
    from cookbook_cli.plugins import registry

    entries = registry.models.entries()
    listed = [m for e in entries.values() for m in e.obj.models]
    for fam_name, entry in entries.items():
        fam: ModelFamily = entry.obj
        is_family = name == fam_name
        if is_family or _matches(name, fam.patterns):
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
    raise UnknownNameError("model", name, list(entries) + listed, "Run `cookbook models list` to see the known families.")


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
        f"no model family uses renderer {renderer!r}; pass --tokenizer (or --model) to say which tokenizer to use"
    )


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
        ),
        "Meta Llama 3.x (tokenizer also offline from llama-models)",
    )
