"""`nll`: how well a model predicts the trained tokens of a conversation file.

Each conversation is rendered as a training example (`train_on_what` picks
the tokens, as in `train sl`) and scored with the sampling client's
`compute_logprobs`. The result, over all trained tokens of the file:

- `nll`: mean negative log-likelihood per trained token (nats), the number
  `train sl` logs as test_nll;
- `bits_per_byte`: the summed NLL in bits over the UTF-8 bytes of the trained
  text, which compares across tokenizers;
- `tokens`: how many tokens were scored.
"""

from __future__ import annotations

import math
from typing import Any

import chz

from cookbook_cli.conversations import located
from cookbook_cli.errors import CookbookError
from cookbook_cli.evaluation.base import EvalContext, Evaluator, Example


def trained_bytes(tokenizer: Any, tokens: list[int], weights: list[float]) -> int:
    """UTF-8 bytes of the trained text: each run of consecutive trained tokens decoded as one piece."""
    total = 0
    run: list[int] = []
    for t, w in zip(tokens, weights):
        if w > 0:
            run.append(t)
        elif run:
            total += len(tokenizer.decode(run).encode("utf-8"))
            run = []
    if run:
        total += len(tokenizer.decode(run).encode("utf-8"))
    return total


def held_out_rows(run_config: dict[str, Any] | None) -> list[Any] | None:
    """The test split a supervised run held out from training (rebuilt from its
    config.json: the dataset builder and the seed), or None when the config is
    not a supervised run's (no run, a preference or RL run)."""
    from cookbook_cli.plugins import registry

    dataset = (run_config or {}).get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
        return None
    entry = registry.dataset_builders.entries().get(dataset["name"])
    if entry is None or registry.dataset_builders.kind_of(entry) != "supervised":
        return None
    builder = entry.obj(**{k: v for k, v in dataset.items() if k != "name"})
    _, test = builder.load(int(run_config.get("seed") or 0))  # type: ignore[union-attr]
    if not test:
        raise CookbookError(
            f"the run held out no rows of its dataset ({builder.describe()}, test_size=0) to score; "
            "give nll path=FILE.jsonl"
        )
    return list(test)


@chz.chz
class NLLEvaluator(Evaluator):
    """Mean NLL and bits per byte of the trained tokens of a conversation file."""

    path: str = chz.field(
        default="", doc="conversation file (.jsonl); default: a run's held-out rows, or the bundled sample conversations"
    )
    train_on_what: str = chz.field(default="all_assistant_messages", doc="which tokens are scored (as in train sl)")
    max_examples: int | None = chz.field(default=None, doc="score the first N conversations only")

    def main_metric(self) -> str:
        return "nll"

    def examples(self, ctx: EvalContext) -> list[Example]:
        from cookbook_cli.conversations import load_conversations
        from cookbook_cli.data.builders import sample_conversations_path
        from cookbook_cli.sampling import prompt_key
        from cookbook_cli.types import TrainOnWhat

        TrainOnWhat.parse(self.train_on_what)
        held_out = None if self.path else held_out_rows(ctx.run_config)
        convs = held_out if held_out is not None else load_conversations(self.path or str(sample_conversations_path()))
        if self.max_examples is not None:
            convs = convs[: self.max_examples]
        return [Example(f"{i}:{prompt_key(c)}", c) for i, c in enumerate(convs)]

    async def evaluate(self, example: Example, ctx: EvalContext) -> dict[str, Any]:
        from tinker.types import ModelInput

        conv = example.data
        try:
            tokens, weights = ctx.renderer.build_supervised_tokens(conv.messages, self.train_on_what, conv.tools or None)
        except CookbookError as e:
            raise located(conv.source, e, f"conversation {example.id.split(':')[0]}") from None
        logprobs = await ctx.sampling_client.compute_logprobs_async(ModelInput.from_ints(tokens))
        # The first token has no logprob (nothing precedes it) and is never a target.
        scored = [(lp, w) for lp, w in zip(logprobs[1:], weights[1:]) if w > 0]
        nll_sum = -sum(float(lp) * w for lp, w in scored if lp is not None)
        weight = sum(w for _, w in scored)
        return {
            "id": example.id,
            "nll_sum": nll_sum,
            "weight": weight,
            "tokens": len(scored),
            "bytes": trained_bytes(ctx.tokenizer, tokens[1:], weights[1:]),
            "metrics": {"nll": nll_sum / weight} if weight > 0 else {},
        }

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, float]:
        nll_sum = sum(r["nll_sum"] for r in records)
        weight = sum(r["weight"] for r in records)
        n_bytes = sum(r["bytes"] for r in records)
        if weight <= 0:
            raise CookbookError(
                f"no conversation has a token trained under train_on_what={self.train_on_what}; pick another train_on_what"
            )
        out = {"nll": nll_sum / weight, "tokens": float(sum(r["tokens"] for r in records))}
        if n_bytes > 0:
            out["bits_per_byte"] = nll_sum / math.log(2) / n_bytes
        return out
