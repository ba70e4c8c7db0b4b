"""`env`: any registered RL environment as a benchmark.

The env's test split (or, with `split=train`, its training problems) is
rolled out with the model: each group is one problem attempted
`num_samples` times. An attempt passes when it reports the env's
`success_metric` (default `correct`) above 0.5, or, for envs without that
metric, when its total reward reaches `success_reward`. The result:

- `reward`: the mean total reward of an episode;
- `pass@k` for each k in `pass_k` (the unbiased estimator over a group);
- `success`: the fraction of attempts that passed;
- `env/<metric>`: the mean of each metric the env reports.
"""

from __future__ import annotations

import itertools
from typing import Any

import chz

from cookbook_cli.config import RegistryFactory
from cookbook_cli.errors import CookbookError
from cookbook_cli.evaluation.base import EvalContext, Evaluator, Example, check_pass_k, pass_at_k
from cookbook_cli.plugins import registry
from cookbook_cli.rl.arithmetic import ArithmeticBuilder
from cookbook_cli.rl.types import RLDatasetBuilder


@chz.chz
class EnvEvaluator(Evaluator):
    """Mean reward, pass@k and the env's own metrics on a registered env's test split."""

    env: RLDatasetBuilder = chz.field(
        default_factory=ArithmeticBuilder,
        meta_factory=RegistryFactory(registry.envs, ArithmeticBuilder),
        doc="environment (cookbook envs list); its options are env.<field>",
    )
    split: str = chz.field(default="test", doc="test, or train (for envs without a test split)")
    num_samples: int = chz.field(default=4, doc="attempts per problem (the group size)")
    max_groups: int = chz.field(default=32, doc="problems evaluated")
    pass_k: list[int] = chz.field(default_factory=lambda: [1], doc="report pass@k for these k (each <= num_samples)")
    temperature: float = chz.field(default=1.0, doc="sampling temperature")
    max_tokens: int | None = chz.field(default=None, doc="sampled tokens per turn; default: the env's")
    success_metric: str = chz.field(default="correct", doc="episode metric that says an attempt passed (> 0.5)")
    success_reward: float = chz.field(default=1.0, doc="without that metric, the total reward an attempt must reach")

    @chz.validate
    def _check_counts(self) -> None:
        if self.split not in ("test", "train"):
            raise CookbookError(f"split must be test or train, got {self.split!r}")
        if self.num_samples < 1 or self.max_groups < 1:
            raise CookbookError("num_samples and max_groups must be at least 1")
        check_pass_k(self.pass_k, self.num_samples)

    def main_metric(self) -> str:
        return "reward"

    def env_name(self) -> str:
        from cookbook_cli.config import registry_name_of

        return registry_name_of(registry.envs, self.env) or type(self.env).__name__

    def examples(self, ctx: EvalContext) -> list[Example]:
        from cookbook_cli.rl.types import EnvContext

        name = self.env_name()
        env_ctx = EnvContext(name, ctx.renderer, ctx.tokenizer, self.num_samples, min(self.max_groups, 64), ctx.seed)
        train, test = self.env(env_ctx)
        dataset = test if self.split == "test" else train
        if dataset is None:
            raise CookbookError(f"env {name!r} has no test split; pass split=train to evaluate on its training problems")
        out: list[Example] = []
        for b in itertools.count():
            if len(out) >= self.max_groups or b >= len(dataset):
                break
            for j, builder in enumerate(dataset.get_batch(b)):
                if len(out) >= self.max_groups:
                    break
                out.append(Example(f"{self.split}/{b}/{j}", builder))
        if not out:
            raise CookbookError(f"env {name!r} made no {self.split} problems; check its options (cookbook envs list)")
        return out

    def passed(self, reward: float, metrics: dict[str, float]) -> bool:
        if self.success_metric in metrics:
            return metrics[self.success_metric] > 0.5
        return reward >= self.success_reward

    async def evaluate(self, example: Example, ctx: EvalContext) -> dict[str, Any]:
        from cookbook_cli.completers import SamplingSettings
        from cookbook_cli.rl.rollouts import do_group_rollout

        max_tokens = self.max_tokens if self.max_tokens is not None else int(self.env.default_max_tokens)
        completer = ctx.token_completer(SamplingSettings(max_tokens=max_tokens, temperature=self.temperature), example.id)
        rollout = await do_group_rollout(example.data, completer)
        group = rollout.group
        if group is None:
            errors = "; ".join(f"{e.where}: {e.error_type}: {e.message}" for e in rollout.errors[:2])
            raise CookbookError(f"env {self.env_name()!r} failed on problem {example.id}: {errors}")
        rewards = group.total_rewards()
        episode_metrics: list[dict[str, float]] = []
        for traj, extra in zip(group.trajectories, group.metrics):
            merged: dict[str, float] = {}
            for t in traj.transitions:
                merged.update(t.metrics)
            merged.update(extra)
            episode_metrics.append(merged)
        passes = [self.passed(r, m) for r, m in zip(rewards, episode_metrics)]
        n, c = len(passes), sum(passes)
        metrics: dict[str, float] = {"reward": sum(rewards) / n, "success": c / n}
        metrics.update({f"pass@{k}": pass_at_k(n, c, k) for k in self.pass_k if k <= n})
        keys = sorted({k for m in episode_metrics for k in m})
        for k in keys:
            values = [float(m[k]) for m in episode_metrics if k in m]
            metrics[f"env/{k}"] = sum(values) / len(values)
        logs = [dict(t.transitions[-1].logs) for t in group.trajectories if t.transitions]
        return {"id": example.id, "rewards": rewards, "passed": passes, "errors": len(rollout.errors), "logs": logs, "metrics": metrics}
