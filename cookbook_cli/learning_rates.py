"""Learning-rate defaults per model, the rule tinker-cookbook's
`hyperparam_utils.get_lr` applies.

A family whose rule was calibrated registers `lr_exponent`; the model's hidden
size comes from the family's `hidden_sizes`, else from the `config.json` of a
model folder or of a model in the Hugging Face cache (never the network). Then

    full fine-tuning:  5e-5 * (2000 / hidden_size) ** lr_exponent
    LoRA (any rank):   10 times that (LoRA wants ~10x the full-FT rate)

Llama 3 uses exponent 0.781 and Qwen3 0.0775 (tinker-cookbook's sweeps); a
family without one (DeepSeek, gpt-oss: not calibrated there either), or a
model whose hidden size is unknown, gets the generic rate (2e-4 LoRA, 2e-5
full) and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BASE_FULL_FT_LR = 5e-5
LORA_MULTIPLIER = 10.0
REFERENCE_HIDDEN_SIZE = 2000
GENERIC_LORA_LR = 2e-4
GENERIC_FULL_FT_LR = 2e-5


@dataclass(frozen=True)
class LearningRateDefault:
    lora: float
    full: float
    rule: str  # how it was reached, shown by `models info`

    def for_rank(self, lora_rank: int) -> float:
        return self.lora if lora_rank > 0 else self.full


def _config_hidden_size(folder: Path) -> int | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    # Multimodal configs keep the language model's size under text_config.
    for source in (config, config.get("text_config")):
        if isinstance(source, dict) and isinstance(source.get("hidden_size"), int):
            return source["hidden_size"]
    return None


def _cached_config_folder(model: str) -> Path | None:
    from cookbook_cli.models import hf_cache_model_dir

    snapshots = hf_cache_model_dir(model) / "snapshots"
    try:
        return next((s for s in sorted(snapshots.iterdir()) if (s / "config.json").is_file()), None)
    except OSError:
        return None


def hidden_size_of(model: str, table: dict[str, int]) -> int | None:
    """The model's hidden size: the family's table, else a local config.json."""
    lowered = {name.lower(): size for name, size in table.items()}
    if model.lower() in lowered:
        return lowered[model.lower()]
    folder = Path(model).expanduser()
    if not folder.is_dir():
        folder = _cached_config_folder(model) or folder
    return _config_hidden_size(folder) if folder.is_dir() else None


def learning_rate_default(model: str) -> LearningRateDefault:
    """The default peak learning rate of a pretrained `model` (LoRA and full)."""
    from cookbook_cli.errors import UnknownNameError
    from cookbook_cli.models import family_of

    generic = f"generic default ({GENERIC_LORA_LR:g} LoRA, {GENERIC_FULL_FT_LR:g} full)"
    try:
        name, family = family_of(model)
    except UnknownNameError:
        return LearningRateDefault(GENERIC_LORA_LR, GENERIC_FULL_FT_LR, f"{generic}: no model family matches")
    if family.lr_exponent is None:
        return LearningRateDefault(GENERIC_LORA_LR, GENERIC_FULL_FT_LR, f"{generic}: family {name} has no calibrated rule")
    hidden = hidden_size_of(model, dict(family.hidden_sizes))
    if hidden is None:
        return LearningRateDefault(
            GENERIC_LORA_LR, GENERIC_FULL_FT_LR, f"{generic}: hidden size of {model} unknown (no config.json here)"
        )
    full = BASE_FULL_FT_LR * (REFERENCE_HIDDEN_SIZE / hidden) ** family.lr_exponent
    rule = (
        f"{BASE_FULL_FT_LR:g} * ({REFERENCE_HIDDEN_SIZE}/{hidden})^{family.lr_exponent:g} "
        f"(family {name}, hidden size {hidden}); LoRA x{LORA_MULTIPLIER:g}"
    )
    return LearningRateDefault(full * LORA_MULTIPLIER, full, rule)
