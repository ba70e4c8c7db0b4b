"""The evaluator contract, pass@k, and evaluators named by spec strings.

An `Evaluator` (a chz class; its fields are its options) says which examples
it has (`examples`, each with a stable id, so an interrupted evaluation
resumes where it stopped), evaluates one example against a sampling client
(`evaluate` returns a JSON record with its `metrics`), and turns the records
into the result (`summarize`; by default the mean of each metric).

A spec string names an evaluator and its options the way the command line
does: `"arithmetic num_samples=4"`, `"nll path=data/test.jsonl"`.
"""

from __future__ import annotations

import math
import random
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.completers import RendererMessageCompleter, SamplingClientCompleter, SamplingSettings
    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.tokenizers import Tokenizer


@dataclass(frozen=True)
class Example:
    id: str  # stable across runs: results resume by it
    data: Any


@dataclass
class EvalContext:
    """What an evaluator is given: the model to evaluate and how to talk to it."""

    renderer: Renderer
    sampling_client: SamplingClient
    seed: int = 0
    #: The evaluated run's config.json, when a run's checkpoint is evaluated
    #: (`nll` without path= scores the run's held-out rows).
    run_config: dict[str, Any] | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        return self.renderer.tokenizer

    def seed_for(self, example_id: str) -> int:
        """Each example's own seed: a resumed evaluation samples what an uninterrupted one would."""
        return random.Random(f"{self.seed}/{example_id}").getrandbits(31)

    def token_completer(self, settings: SamplingSettings, example_id: str) -> SamplingClientCompleter:
        from dataclasses import replace

        from cookbook_cli.completers import SamplingClientCompleter

        return SamplingClientCompleter.from_settings(self.sampling_client, replace(settings, seed=self.seed_for(example_id)))

    def message_completer(self, settings: SamplingSettings, example_id: str) -> RendererMessageCompleter:
        from cookbook_cli.completers import RendererMessageCompleter

        return RendererMessageCompleter(self.renderer, self.token_completer(settings, example_id))


@chz.chz
class Evaluator:
    """Base of every evaluator. Subclasses implement `examples` and `evaluate`."""

    label: str = chz.field(default="", doc="name of the results (default: the evaluator's name)")

    def examples(self, ctx: EvalContext) -> list[Example]:
        raise NotImplementedError(f"{type(self).__name__} must implement examples(ctx)")

    async def evaluate(self, example: Example, ctx: EvalContext) -> dict[str, Any]:
        """One example's record: JSON, with `metrics` (name -> number)."""
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate(example, ctx)")

    def summarize(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """The result: the mean of each metric over the records that hold it."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for r in records:
            for k, v in (r.get("metrics") or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    sums[k] = sums.get(k, 0.0) + float(v)
                    counts[k] = counts.get(k, 0) + 1
        return {k: sums[k] / counts[k] for k in sums}

    def works_on_messages(self) -> bool:
        """Whether `evaluate` uses only `ctx.message_completer` (no tokens,
        tokenizer or sampling client), so it can run against an OpenAI endpoint."""
        return False

    def main_metric(self) -> str:
        """The metric a table or a plot across checkpoints shows first."""
        return "accuracy"


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c passed:
    1 - C(n-c, k) / C(n, k) (Chen et al., 2021), in a stable product form."""
    if not (0 <= c <= n) or k < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def check_pass_k(pass_k: list[int] | tuple[int, ...], num_samples: int) -> None:
    for k in pass_k:
        if k < 1 or k > num_samples:
            raise CookbookError(f"pass_k={k} needs 1 <= k <= num_samples ({num_samples}); raise num_samples or lower k")


def split_spec(spec: str) -> tuple[str, list[str]]:
    try:
        words = shlex.split(spec)
    except ValueError as e:
        raise CookbookError(f"evaluator spec {spec!r}: {e}") from None
    if not words or "=" in words[0]:
        raise CookbookError(f"evaluator spec {spec!r} must start with an evaluator name (cookbook evaluators list)")
    return words[0], words[1:]


def make_evaluator(spec: str) -> tuple[str, Evaluator]:
    """(results name, evaluator) of a spec `"NAME key=value ..."`; unknown names get suggestions."""
    name, words = split_spec(spec)
    return build_evaluator(name, words)


def build_evaluator(name: str, words: list[str]) -> tuple[str, Evaluator]:
    from cookbook_cli.config import make_config
    from cookbook_cli.plugins import registry

    cls = registry.evaluators.get_checked(name, registry.chz_subclass_of(Evaluator), "a chz subclass of cookbook_cli.evaluation.Evaluator").obj
    try:
        evaluator = make_config(cls, {}, words)
    except CookbookError as e:
        raise CookbookError(f"evaluator {name!r}: {e}") from None
    return evaluator.label or name, evaluator


def make_evaluators(specs: list[str] | tuple[str, ...]) -> list[tuple[str, Evaluator]]:
    """Evaluators of a recipe's `evaluators=[...]`; two with one name get told apart by label."""
    out = [make_evaluator(s) for s in specs]
    names = [n for n, _ in out]
    for n in names:
        if names.count(n) > 1:
            raise CookbookError(f"two evaluators are named {n!r}; give one a label, e.g. \"{n} label={n}2 ...\"")
    return out


def evaluator_options(cls: type) -> list[dict[str, Any]]:
    """The options of an evaluator class; a default built from a registry (an env) shows its name."""
    from chz.util import MISSING

    from cookbook_cli.config import registry_name_of
    from cookbook_cli.plugins import registry
    from cookbook_cli.rl.envs import env_options

    rows = env_options(cls)
    fields = chz.chz_fields(cls)
    for row in rows:
        f = fields.get(row["name"])
        if f is not None and f._default_factory is not MISSING:
            made = f._default_factory()
            if chz.is_chz(made):
                row["default"] = registry_name_of(registry.envs, made) or type(made).__name__
    return rows


def list_evaluators() -> list[dict[str, Any]]:
    from cookbook_cli.plugins import registry

    rows = []
    for name, entry in registry.evaluators.entries().items():
        options = evaluator_options(entry.obj) if chz.is_chz(entry.obj) else []
        rows.append({"name": name, "description": entry.description, "plugin": entry.plugin, "options": [o for o in options if o["name"] != "label"]})
    return rows
