"""Built-in env `preference`: RL from a preference model's pairwise judgments.

Each group is `group_size` replies to one prompt of a prompt file
(`env.prompts`, default the sample prompts shipped with cookbook). Once the whole group
has answered, every pair of its replies is judged by the preference model
(`env.judge`: a `train pm` run or a model, through `PreferenceJudge`, both
orders averaged), and each reply's reward is its win rate in the group: the
share of its opponents it beats (P(it is better) > 0.5; an exact 0.5 is half a
win), or with `env.soft=true` the mean of those probabilities. Wins make a
clear signal even from a judge whose probabilities stay near 0.5. Rewards are
centred within the group by the RL loop, so only how a reply ranks among its
siblings matters.

The judge is opened once per process on first use (`shared_judge`), on its
run's engine (a model: `env.judge_engine`, default local), and the groups
pickle by the judge's name, not its weights.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING

import chz

from cookbook_cli.distill.prompts import PromptDataset, PromptFileBuilder, PromptGroupBuilder
from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.types import EnvContext, EnvGroupBuilder, Metrics, RLDataset, RLDatasetBuilder

if TYPE_CHECKING:
    from cookbook_cli.conversations import Conversation
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.rl.types import Env, Trajectory


class PreferenceGroupBuilder(PromptGroupBuilder):
    """`group_size` replies to one prompt, rewarded by their win rates in the group."""

    def __init__(
        self, renderer: Renderer, conversation: Conversation, group_size: int, judge: str, judge_engine: str | None, soft: bool, env_name: str,
    ) -> None:
        super().__init__(renderer, conversation, group_size)
        self.judge = judge
        self.judge_engine = judge_engine
        self.soft = soft
        self.env_name = env_name

    async def compute_group_rewards(self, trajectories: list[Trajectory], envs: Sequence[Env]) -> list[tuple[float, Metrics]]:
        from cookbook_cli.preference.judge import decided, shared_judge

        replies = []
        malformed = []
        for t in trajectories:
            message, termination = self.renderer.parse_response(t.transitions[-1].ac.tokens)
            replies.append(message)
            malformed.append(float(termination.malformed))
        n = len(replies)
        if n < 2:
            return [(0.0, {}) for _ in trajectories]
        judge = shared_judge(self.judge, self.judge_engine)
        pairs = list(combinations(range(n), 2))
        prompt = self.conversation.messages
        answers = await asyncio.gather(*(judge.judge(prompt, replies[i], replies[j]) for i, j in pairs))
        wins = [0.0] * n
        preference = [0.0] * n
        for (i, j), p in zip(pairs, answers, strict=True):
            won = p if self.soft else decided(p, True)
            wins[i] += won
            wins[j] += 1.0 - won
            preference[i] += p
            preference[j] += 1.0 - p
        return [
            (w / (n - 1), {"win_rate": w / (n - 1), "preference": q / (n - 1), "malformed": m})
            for w, q, m in zip(wins, preference, malformed, strict=True)
        ]


class _PreferencePrompts(PromptDataset):
    def __init__(self, prompts: Sequence[Conversation], ctx: EnvContext, env: PreferenceEnvBuilder) -> None:
        super().__init__(prompts, ctx.renderer, ctx.group_size, ctx.groups_per_batch, env.epochs, ctx.seed, f"env {ctx.env_name!r} prompts")
        self.env = env
        self.env_name = ctx.env_name

    def make_group(self, conversation: Conversation) -> EnvGroupBuilder:
        e = self.env
        return PreferenceGroupBuilder(self.renderer, conversation, self.group_size, e.judge, e.judge_engine, e.soft, self.env_name)


@chz.chz
class PreferenceEnvBuilder(RLDatasetBuilder):
    """Replies to prompts, rewarded by their win rates under a preference model's pairwise judgments."""

    judge: str = chz.field(default="", doc="the preference model: a `train pm` run directory, or a model")
    judge_engine: str | None = chz.field(default=None, doc="engine of a judge given as a model (a run's is its own); default local")
    prompts: str = chz.field(default="sample", doc="JSONL of conversations ending in a user turn (`sample`: the prompts shipped with cookbook)")
    epochs: int = chz.field(default=10, doc="passes over the prompts: training steps unless --max-steps")
    soft: bool = chz.field(default=False, doc="reward the judge's mean probability of winning instead of the share of wins")

    default_max_tokens = 64

    def __call__(self, ctx: EnvContext) -> tuple[RLDataset, RLDataset | None]:
        from cookbook_cli.distill.prompts import load_prompts
        from cookbook_cli.preference.judge import resolve_model

        if not self.judge.strip():
            raise CookbookError("env preference needs a judge: env.judge=RUN (a `train pm` run directory) or env.judge=MODEL")
        if self.epochs < 1:
            raise CookbookError(f"env.epochs must be at least 1, got {self.epochs}")
        resolve_model(self.judge, self.judge_engine)  # a missing run or model fails now, before the policy loads
        prompts = load_prompts(PromptFileBuilder(path=self.prompts), ctx.seed)
        return _PreferencePrompts(prompts, ctx, self), None
