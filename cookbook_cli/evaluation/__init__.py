"""Evaluators: NLL of conversations, RL envs as benchmarks, graded benchmarks.

An evaluator is a chz class registered through `register_evaluators`; its
fields are its options. `cookbook eval NAME key=value` runs one on a model or
checkpoint and writes `result.json` and `trajectories.jsonl` (resumable by
example id, see `runner`); recipes run the ones in their `evaluators=[...]`
every `eval_every` steps and log them as `test/<name>/<metric>` (`in_training`).

- `base`: the Evaluator contract, pass@k, evaluator specs (`"nll path=x.jsonl"`);
- `nll`, `env_eval`, `benchmarks` (+ `graders`): the built-in evaluators;
- `runner`: running one against a sampling client, with or without files.

Importing this package imports nothing: plugin loading imports its
`default_plugins.evaluators` module only (through the plugin manager).
"""

from typing import Any

_FROM_BASE = ("EvalContext", "Evaluator", "Example", "make_evaluator", "pass_at_k")


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from cookbook_cli.evaluation import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FROM_BASE)
