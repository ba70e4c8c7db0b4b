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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cookbook_cli.errors import UnknownNameError
from cookbook_cli.models.hf_cache import is_local_model


@dataclass(frozen=True)
class OfflineModel:
    """A model a family supplies with no network (e.g. from an installed package)."""

    names: tuple[str, ...]  # the names that resolve to it (a registered name, its Hub id), case-insensitive
    locate: Callable[[], Path | None]  # its local .gguf file or model folder; None when not installed
    install: str  # what makes it available, for the error when it is not
    hub_id: str | None = None  # preferred when the Hugging Face cache holds it


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
    offline: tuple[OfflineModel, ...] = ()


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
    known = is_family or name.lower() in {m.lower() for m in listed} or is_local_model(name) or Path(name).expanduser().is_file()
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


def offline_model(name: str) -> OfflineModel | None:
    """The offline source some family registers under `name`, if any."""
    from cookbook_cli.plugins import registry

    low = name.lower()
    for entry in registry.models.entries().values():
        for offline in entry.obj.offline:
            if low in {n.lower() for n in offline.names}:
                return offline
    return None
