"""`PreferenceJudge`: a preference model (`train pm`) asked which of two replies is better.

    judge = PreferenceJudge(sampling_client, renderer)   # or: with open_judge("runs/pm") as judge:
    p = await judge.judge(prompt_messages, reply_a, reply_b)   # P(reply_a is better)

The judge reads the judging conversation (`judging.judging_messages`) and its
preference in one order is the softmax of its two label scores (the summed
logprobs of "A" and of "B", through the engine protocol's `compute_logprobs`,
so it works on every engine). `judge` asks in both orders and averages,
which cancels a preference for a position; `orders` gives the two answers
apart, for the position-bias metrics.

`open_judge(spec)` opens one from a run directory (its final weights, or newest
checkpoint, with the run's renderer) or a model, as `cookbook sample` does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cookbook_cli.preference.judging import Reply, judging_messages, label_sequences
from cookbook_cli.types import Message

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.preference.types import LabeledComparison
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.sources import ModelSource


class PreferenceJudge:
    def __init__(self, client: SamplingClient, renderer: Renderer) -> None:
        self.client = client
        self.renderer = renderer

    async def first_better(self, prompt: Sequence[Message], first: Reply, second: Reply) -> float:
        """P(`first` is better), asked with `first` as reply A."""
        from tinker.types import ModelInput

        a, b, span_a, span_b = label_sequences(self.renderer, judging_messages(prompt, first, second))
        lp_a, lp_b = await asyncio.gather(
            self.client.compute_logprobs_async(ModelInput.from_ints(a)), self.client.compute_logprobs_async(ModelInput.from_ints(b))
        )
        score_a = sum(float(x) for x in lp_a[span_a] if x is not None)
        score_b = sum(float(x) for x in lp_b[span_b] if x is not None)
        return 1.0 / (1.0 + math.exp(min(score_b - score_a, 700.0)))

    async def orders(self, prompt: Sequence[Message], reply_a: Reply, reply_b: Reply) -> tuple[float, float]:
        """(P(a better) asked as A-then-B, P(a better) asked as B-then-A)."""
        straight, swapped = await asyncio.gather(self.first_better(prompt, reply_a, reply_b), self.first_better(prompt, reply_b, reply_a))
        return straight, 1.0 - swapped

    async def judge(self, prompt: Sequence[Message], reply_a: Reply, reply_b: Reply) -> float:
        """P(`reply_a` is better than `reply_b`), averaged over both orders."""
        straight, swapped = await self.orders(prompt, reply_a, reply_b)
        return (straight + swapped) / 2


def decided(p: float, truth: bool) -> float:
    """A verdict P(a better) = p scored against `truth` (a is better): 1 for the right call, 0 for the wrong one, 0.5 for no preference."""
    return 0.5 if p == 0.5 else float((p > 0.5) == truth)


async def judge_comparisons(judge: PreferenceJudge, comparisons: Sequence[LabeledComparison]) -> dict[str, float]:
    """How well the judge agrees with labelled comparisons (ties left out):

    - `accuracy`: its both-orders preference picks the labelled reply;
    - `accuracy_one_order`: a single order's answer does (both orders counted);
    - `first_rate_minus_half`: how often a single answer picks the reply shown first, less 0.5 (0: no position bias);
    - `order_gap`: accuracy when the better reply is shown first minus when it is shown second."""
    usable = [c for c in comparisons if not c.is_tie]
    if not usable:
        return {}
    answers = await asyncio.gather(
        *(judge.orders(c.comparison.prompt_conversation, c.comparison.completion_A, c.comparison.completion_B) for c in usable)
    )
    both = one = first = better_first = better_second = 0.0
    for c, (straight, swapped) in zip(usable, answers, strict=True):
        a_better = c.label == "A"
        both += decided((straight + swapped) / 2, a_better)
        right_straight, right_swapped = decided(straight, a_better), decided(swapped, a_better)
        one += right_straight + right_swapped
        first += decided(straight, True) + decided(1.0 - swapped, True)  # answered "A" in each order
        # the better reply is A in the straight order when the label is A, in the swapped order otherwise
        better_first += right_straight if a_better else right_swapped
        better_second += right_swapped if a_better else right_straight
    n = len(usable)
    return {
        "accuracy": both / n,
        "accuracy_one_order": one / (2 * n),
        "first_rate_minus_half": first / (2 * n) - 0.5,
        "order_gap": (better_first - better_second) / n,
        "pairs": float(n),
    }


@contextmanager
def open_model(
    spec: str, engine: str | None = None, what: str = "judge", renderer: str | None = None
) -> Iterator[tuple[SamplingClient, Renderer]]:
    """A sampling client and the renderer of `spec`: a run directory (e.g. a
    `train pm` run; its newest checkpoint, its renderer and engine) or a model
    (on `engine`, default local; with `renderer`, else its family's). The
    engine service closes on exit."""
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.sources import open_sampler, renderer_for

    source = resolve_model(spec, engine, what, renderer)
    try:
        renderer = renderer_for(source)
    except CookbookError as e:
        raise CookbookError(f"{what} {spec!r}: {e}") from None
    with open_sampler(source) as client:
        yield client, renderer


@contextmanager
def open_judge(spec: str, engine: str | None = None) -> Iterator[PreferenceJudge]:
    """The judge named by `spec` (see `open_model`)."""
    with open_model(spec, engine) as (client, renderer):
        yield PreferenceJudge(client, renderer)


def resolve_model(spec: str, engine: str | None = None, what: str = "judge", renderer: str | None = None) -> ModelSource:
    """The `ModelSource` of a run directory or model (checked now: a missing one is one line)."""
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.local_paths import refuse_missing_path
    from cookbook_cli.run.reader import RunReader
    from cookbook_cli.sources import resolve_source

    instead = "give a run directory (for a judge: a `train pm` run) or a model"
    if not spec.strip():
        raise CookbookError(f"the {what} is empty; {instead}")
    if RunReader.at(spec) is not None:
        return resolve_source(run=spec)
    refuse_missing_path(spec, what, instead)
    return resolve_source(model=spec, engine=engine, renderer=renderer)


_SHARED: dict[tuple[str, str | None, str | None], tuple[SamplingClient, Renderer]] = {}


def shared_model(spec: str, engine: str | None = None, what: str = "judge", renderer: str | None = None) -> tuple[SamplingClient, Renderer]:
    """One open `open_model(spec, engine, renderer)` per process, opened on first use and
    closed when the process exits: every group of an RL run (and every pickled
    copy of one) and every example of an evaluation asks the same loaded model."""
    import atexit
    from contextlib import ExitStack

    key = (spec, engine, renderer)
    if key not in _SHARED:
        stack = ExitStack()
        _SHARED[key] = stack.enter_context(open_model(spec, engine, what, renderer))
        atexit.register(stack.close)
    return _SHARED[key]


def shared_judge(spec: str, engine: str | None = None) -> PreferenceJudge:
    return PreferenceJudge(*shared_model(spec, engine))
