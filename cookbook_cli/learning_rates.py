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

That rule is for supervised learning. A recipe that trains on its own samples
(`train rl`, on-policy `train distill`) takes 1/5 of it (`ON_POLICY_FACTOR`):
each step changes the data the next one sees, so a step too large compounds
(SmolLM2-135M-Instruct under RL at the supervised 1.3e-3 collapses to one
answer for every prompt; at 2e-4 to 2.6e-4 it learns). tinker-cookbook's
recipes sit there too: arithmetic RL on Llama-3.2-1B at 1e-4 (its get_lr:
4.9e-4), GSM8K RL on Llama-3.1-8B at 4e-5 (2.9e-4), on-policy distillation of
Qwen3-8B-Base at 1e-4 after supervised distillation at 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_FULL_FT_LR = 5e-5
LORA_MULTIPLIER = 10.0
REFERENCE_HIDDEN_SIZE = 2000
GENERIC_LORA_LR = 2e-4
GENERIC_FULL_FT_LR = 2e-5
ON_POLICY_FACTOR = 0.2


@dataclass(frozen=True)
class LearningRateDefault:
    lora: float
    full: float
    rule: str  # how it was reached, shown by `models info`

    def for_rank(self, lora_rank: int, on_policy: bool = False) -> float:
        """The rate of a LoRA (rank > 0) or full fine-tuning run; a recipe that
        trains on its own samples (RL, on-policy distillation) takes `ON_POLICY_FACTOR` of it."""
        rate = self.lora if lora_rank > 0 else self.full
        return rate * ON_POLICY_FACTOR if on_policy else rate


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
