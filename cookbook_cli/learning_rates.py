"""Learning-rate defaults per model, the rule tinker-cookbook's
`hyperparam_utils.get_lr` applies.

The rule itself, with no lookups (`cookbook_cli.models.learning_rate_default`
finds the family and hidden size of a model). A family whose rule was
calibrated registers `lr_exponent`; the model's hidden size comes from the
family's `hidden_sizes`, else from the model's own files (config.json of a
folder or of the Hugging Face cache's copy, a GGUF's metadata; never the
network). Then

    full fine-tuning:  5e-5 * (2000 / hidden_size) ** lr_exponent
    LoRA (any rank):   10 times that (LoRA wants ~10x the full-FT rate)

Llama 3 uses exponent 0.781 and Qwen3 0.0775 (tinker-cookbook's sweeps); a
family without one (DeepSeek, gpt-oss: not calibrated there either), or a
model whose hidden size is unknown, gets the generic rate (2e-4 LoRA, 2e-5
full) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def generic(reason: str) -> LearningRateDefault:
    return LearningRateDefault(
        GENERIC_LORA_LR, GENERIC_FULL_FT_LR, f"generic default ({GENERIC_LORA_LR:g} LoRA, {GENERIC_FULL_FT_LR:g} full): {reason}"
    )


def family_rule(family: str, exponent: float, hidden: int) -> LearningRateDefault:
    """The calibrated rule of `family` at hidden size `hidden`."""
    full = BASE_FULL_FT_LR * (REFERENCE_HIDDEN_SIZE / hidden) ** exponent
    rule = (
        f"{BASE_FULL_FT_LR:g} * ({REFERENCE_HIDDEN_SIZE}/{hidden})^{exponent:g} "
        f"(family {family}, hidden size {hidden}); LoRA x{LORA_MULTIPLIER:g}"
    )
    return LearningRateDefault(full * LORA_MULTIPLIER, full, rule)
