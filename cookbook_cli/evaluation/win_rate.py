"""`win_rate`: how often a model's replies beat a baseline's, judged by a preference model.

For each held-out prompt (a prompt file; default the sample prompts shipped
with cookbook) the evaluated model and the baseline each sample one reply
(the same seed per prompt, so a resumed evaluation repeats itself), and the
judge (`judge=`: a `train pm` run or a model, `PreferenceJudge`, both orders
averaged) gives P(the model's reply is better). The result:

- `win_rate`: wins (P > 0.5) plus half the exact ties, over the prompts;
- `preference`: the mean of P.

The baseline is a run directory or a model (`baseline=`); by default the
evaluated model's base model, so inside a training run (`evaluators=["win_rate
judge=runs/pm"]`) it measures the policy against its untrained start.
"""

from __future__ import annotations

from typing import Any

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.evaluation.base import EvalContext, Evaluator, Example


@chz.chz
class WinRateEvaluator(Evaluator):
    """Win rate of the model's replies against a baseline's, judged by a preference model."""

    judge: str = chz.field(default="", doc="the preference model: a `train pm` run directory, or a model")
    baseline: str = chz.field(default="", doc="run directory or model to compare against; default: the evaluated model's base model")
    engine: str | None = chz.field(default=None, doc="engine of a judge or baseline given as a model (a run's is its own); default local")
    prompts: str = chz.field(default="sample", doc="JSONL of conversations ending in a user turn (`sample`: the prompts shipped with cookbook)")
    max_examples: int | None = chz.field(default=None, doc="judge the first N prompts only")
    max_tokens: int = chz.field(default=64, doc="sampled tokens per reply")
    temperature: float = chz.field(default=1.0, doc="sampling temperature of both models")

    @chz.validate
    def _check(self) -> None:
        if not self.judge.strip():
            raise CookbookError("win_rate needs a judge: judge=RUN (a `train pm` run directory) or judge=MODEL")
        if self.max_tokens < 1:
            raise CookbookError(f"max_tokens must be at least 1, got {self.max_tokens}")

    def main_metric(self) -> str:
        return "win_rate"

    def examples(self, ctx: EvalContext) -> list[Example]:
        from cookbook_cli.distill.prompts import PromptFileBuilder
        from cookbook_cli.preference.judge import resolve_model
        from cookbook_cli.sampling import prompt_key

        resolve_model(self.judge, self.engine)
        if self.baseline:
            resolve_model(self.baseline, self.engine, "baseline", ctx.renderer.name)
        prompts, _ = PromptFileBuilder(path=self.prompts).load(0)
        if self.max_examples is not None:
            prompts = prompts[: self.max_examples]
        return [Example(f"{i}:{prompt_key(c)}", c) for i, c in enumerate(prompts)]

    async def evaluate(self, example: Example, ctx: EvalContext) -> dict[str, Any]:
        import asyncio

        from cookbook_cli.completers import SamplingSettings
        from cookbook_cli.preference.judge import PreferenceJudge, decided, shared_model
        from cookbook_cli.types import text_of

        conv = example.data
        settings = SamplingSettings(max_tokens=self.max_tokens, temperature=self.temperature)
        # a baseline given as a model speaks the evaluated model's format (a run's: its own)
        client, renderer = shared_model(self.baseline or ctx.sampling_client.get_base_model(), self.engine, "baseline", ctx.renderer.name)
        baseline = EvalContext(renderer, client, ctx.seed)
        mine, theirs = await asyncio.gather(
            ctx.message_completer(settings, example.id)(conv.messages, conv.tools or None),
            baseline.message_completer(settings, example.id)(conv.messages, conv.tools or None),
        )
        judge = PreferenceJudge(*shared_model(self.judge, self.engine))
        p = await judge.judge(conv.messages, mine[0].message, theirs[0].message)
        return {
            "id": example.id,
            "reply": text_of(mine[0].message),
            "baseline_reply": text_of(theirs[0].message),
            "metrics": {"win_rate": decided(p, True), "preference": p},
        }
