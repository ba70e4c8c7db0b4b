"""`cookbook models info`: everything cookbook knows of a model input, read
from names and files without loading weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError, UnknownNameError
from cookbook_cli.learning_rates import LearningRateDefault
from cookbook_cli.models.defaults import choose_renderer, learning_rate_default
from cookbook_cli.models.facts import ModelFacts, model_facts
from cookbook_cli.models.families import ModelInfo, model_info
from cookbook_cli.models.inputs import ModelInput, looks_like_path, resolve_model_input


@dataclass(frozen=True)
class ModelReport:
    name: str
    input: ModelInput
    info: ModelInfo | None  # None: no family matches (a local model with its own files)
    facts: ModelFacts
    renderer: str | None  # None: the model needs --renderer
    renderer_reason: str
    learning_rate: LearningRateDefault

    def to_json(self) -> dict[str, Any]:
        family = asdict(self.info) if self.info is not None else {"name": self.name, "family": None, "known": True}
        return {
            **family,
            "source": self.input.origin,
            "folder": str(self.input.folder) if self.input.folder is not None else None,
            **asdict(self.facts),
            "renderer": self.renderer,
            "renderer_reason": self.renderer_reason,
            "lora_learning_rate": self.learning_rate.lora,
            "full_learning_rate": self.learning_rate.full,
            "learning_rate_rule": self.learning_rate.rule,
            "on_policy_lora_learning_rate": self.learning_rate.for_rank(1, on_policy=True),
            "on_policy_full_learning_rate": self.learning_rate.for_rank(0, on_policy=True),
        }


def _is_local(name: str) -> bool:
    return bool(name.strip()) and Path(name).expanduser().exists()


def describe_model(name: str, engine: str = "local") -> ModelReport:
    """What `name` (a registered name, folder, .gguf or Hub id) is and what
    cookbook will use with it. A name that no family matches and that is no
    local model is an `UnknownNameError`."""
    try:
        info: ModelInfo | None = model_info(name)
    except UnknownNameError:
        if not _is_local(name):
            if looks_like_path(name):
                resolve_model_input(name)  # says the path does not exist
            raise
        info = None
    resolved = resolve_model_input(name, convert=False)
    facts = model_facts(name) if resolved.kind != "hub" or info is not None else ModelFacts()
    try:
        choice = choose_renderer(name, engine)
        renderer, reason = choice.name, choice.reason
    except CookbookError as e:
        renderer, reason = None, str(e)
    subject = info.name if info is not None else name
    return ModelReport(name, resolved, info, facts, renderer, reason, learning_rate_default(subject))

