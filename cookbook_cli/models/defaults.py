"""Defaults a recipe or command fills in from the model: renderer, tokenizer,
learning rate, run label. `resolve_model_and_renderer` serves every command
that takes `--model` (train *, sample, chat, eval, export)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError, UnknownNameError
from cookbook_cli.learning_rates import LearningRateDefault, family_rule, generic
from cookbook_cli.models.facts import model_facts
from cookbook_cli.models.families import ModelFamily, family_of, model_info, offline_model, recommended_model_for_renderer
from cookbook_cli.models.inputs import resolve_model_input

DEFAULT_RENDERER = "llama3"
HF_TEMPLATE = "hf_template"
#: Models trained from scratch (the local engine's random: shapes) need a far higher rate.
FROM_SCRATCH_LR = 1e-2


@dataclass(frozen=True)
class ModelSpec:
    """What an engine says of a model name only it understands (see default_plugins/engines)."""

    tokenizer: str  # where the tokenizer comes from
    label: str  # short name for run directories
    from_scratch: bool = False  # randomly initialised: it needs a high learning rate


@dataclass(frozen=True)
class RendererChoice:
    name: str
    reason: str  # why, in words (shown by `models info` and when hf_template is picked)


def _engine_extra(engine: str, key: str) -> Any:
    from cookbook_cli.plugins import registry

    return registry.engines.get(engine).extra.get(key)  # unknown engines fail here, with suggestions


def model_spec(model: str, engine: str) -> ModelSpec | None:
    describe = _engine_extra(engine, "model_spec")
    return describe(model) if callable(describe) else None


def tokenizer_source(name: str) -> str:
    """Where a tokenizer named `name` loads from: the model folder of a .gguf
    file or of a name a family supplies offline; else `name` itself (a
    tokenizer.json, a folder, a Hub id, a family's tokenizer name)."""
    if Path(name).suffix.lower() == ".gguf" or offline_model(name) is not None:
        return resolve_model_input(name).load_from
    return name


def tokenizer_for_model(model: str, engine: str) -> str:
    """Where the tokenizer of `model` comes from: what the engine says of a name
    only it knows, the model's own folder, or the model family's tokenizer
    source (a Hub id: its own)."""
    spec = model_spec(model, engine)
    if spec is not None:
        return tokenizer_source(spec.tokenizer)
    resolved = resolve_model_input(model)
    if resolved.folder is not None:
        return str(resolved.folder)
    try:
        return model_info(model).tokenizer
    except UnknownNameError:
        return model


def choose_renderer(model: str, engine: str) -> RendererChoice:
    """The renderer `model` gets by default: its family's; else, when the model
    ships a chat template, `hf_template`; else none (an error saying --renderer)."""
    spec = model_spec(model, engine)
    named = spec.tokenizer if spec is not None else model
    try:
        info = model_info(named)
        return RendererChoice(info.renderer, f"family {info.family} (plugin {info.plugin})")
    except UnknownNameError:
        pass
    facts = model_facts(named)
    if facts.chat_template:
        return RendererChoice(HF_TEMPLATE, f"the model's own chat template; no family matched {named}")
    if facts.chat_template is None:
        raise CookbookError(f"no known model family matches {model!r}, so its renderer is unknown; pass --renderer")
    raise CookbookError(
        f"{model!r} matches no model family and ships no chat template, so its chat format is unknown; "
        "pass --renderer (cookbook renderers list)"
    )


def renderer_for_model(model: str, engine: str) -> str:
    """The recommended renderer of `model` (see `choose_renderer`)."""
    return choose_renderer(model, engine).name


_said: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr, flush=True)


def resolve_model_and_renderer(engine: str, model: str | None, renderer: str | None) -> tuple[str, str]:
    """Fill in --model and --renderer: with no model, the engine's default for the
    renderer (else the renderer's recommended model); the renderer follows the
    model (`choose_renderer`; a model's own template is said on stderr)."""
    from cookbook_cli.plugins import registry

    if renderer is not None:
        registry.renderers.get(renderer)  # unknown names fail here, with suggestions
    if model is None:
        renderer = renderer or DEFAULT_RENDERER
        default_model = _engine_extra(engine, "default_model")
        model = default_model(renderer) if callable(default_model) else recommended_model_for_renderer(renderer)
    elif model_spec(model, engine) is None:
        resolve_model_input(model, convert=False)  # a missing file or unsupported input fails here, before any load
    if renderer is None:
        choice = choose_renderer(model, engine)
        registry.renderers.get(choice.name)
        if choice.name == HF_TEMPLATE:
            _say_once(f"Renderer: {choice.name} ({choice.reason})")
        renderer = choice.name
    return model, renderer


def model_label(model: str, engine: str) -> str:
    spec = model_spec(model, engine)
    return spec.label if spec is not None else model


def known_hidden_size(model: str, family: ModelFamily | None) -> int | None:
    """`model`'s hidden size without loading it: its family's table of
    well-known models, else its own files (config.json, a .gguf's header, the
    Hugging Face cache); None where neither says."""
    if family is not None:
        size = {m.lower(): size for m, size in family.hidden_sizes}.get(model.lower())
        if size is not None:
            return size
    try:
        return model_facts(model).hidden_size
    except CookbookError:
        return None


def learning_rate_default(model: str) -> LearningRateDefault:
    """The default peak learning rate of a pretrained `model` (LoRA and full):
    its family's calibrated rule over its hidden size (see `learning_rates`)."""
    try:
        name, family = family_of(model)
    except UnknownNameError:
        return generic("no model family matches")
    if family.lr_exponent is None:
        return generic(f"family {name} has no calibrated rule")
    hidden = known_hidden_size(model, family)
    if hidden is None:
        return generic(f"hidden size of {model} unknown (no config.json here)")
    return family_rule(name, family.lr_exponent, hidden)


def default_learning_rate(model: str, engine: str, lora_rank: int, on_policy: bool = False) -> float:
    """A starting learning rate: high for models trained from scratch, else the
    model family's rule over the hidden size, LoRA or full, lower for a recipe
    that trains on its own samples (`on_policy`: RL, on-policy distillation)."""
    spec = model_spec(model, engine)
    if spec is not None and spec.from_scratch:
        return FROM_SCRATCH_LR
    return learning_rate_default(spec.tokenizer if spec is not None else model).for_rank(lora_rank, on_policy)
