"""Evaluators inside a training run (every recipe's `evaluators=[...]`): built
and checked before the run opens, run every `eval_every` steps on a sampling
client of the current weights, logged as `test/<name>/<metric>`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cookbook_cli.renderers.base import Renderer


def prepare_evaluators(specs: Sequence[str], renderer: Renderer) -> list[tuple[str, Any]]:
    """The recipe's evaluators, with their examples built once now: bad names,
    options or data fail before a model loads."""
    from cookbook_cli.evaluation.base import EvalContext, make_evaluators

    evaluators = make_evaluators(list(specs))
    for _, evaluator in evaluators:
        evaluator.examples(EvalContext(renderer, None))  # type: ignore[arg-type]
    return evaluators


def run_evaluators(evaluators: list[tuple[str, Any]], renderer: Renderer, client: Any, seed: int) -> dict[str, float]:
    """`test/<name>/<metric>` of every evaluator on a sampling client of the current weights."""
    import asyncio

    from cookbook_cli.evaluation.runner import evaluate_with_client

    if not evaluators or client is None:
        return {}
    return asyncio.run(evaluate_with_client(evaluators, renderer, client, seed))
