"""Single-turn problems: a question, an answer checker and a format reward.

Subclass `ProblemEnv` with `question()`, `check_answer(text)` and optionally
`check_format(text)` and `reference_answer()`. The reward of a response is

    correct + format_coef * (well_formed - 1)

where `correct` is 1.0 when the answer checks out (or its partial credit,
see `score_answer`) and `well_formed` is 1.0
when the response ended cleanly at the renderer's stop sequence and
`check_format` accepts it: a correct answer in a malformed response earns
`1 - format_coef`, a wrong but well-formed one earns 0.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cookbook_cli.rl.types import Action, Env, EnvContext, EnvGroupBuilder, RLDataset, StepResult, StopCondition
from cookbook_cli.types import Message, text_of

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.renderers.base import Renderer


class ProblemEnv(Env):
    def __init__(
        self, renderer: Renderer, convo_prefix: list[Message] | None = None, format_coef: float = 0.1
    ) -> None:
        self.renderer = renderer
        self.convo_prefix = list(convo_prefix or [])
        self.format_coef = format_coef

    @abstractmethod
    def question(self) -> str:
        """The user message that poses the problem."""

    @abstractmethod
    def check_answer(self, response: str) -> bool:
        """Whether the response's text answers the problem correctly."""

    def check_format(self, response: str) -> bool:
        """Whether the response's text has the expected form (default: any non-empty text)."""
        return bool(response.strip())

    async def score_answer(self, response: str) -> tuple[float, dict[str, float]]:
        """The answer's score in [0, 1] (`correct`) and any metrics of its own.
        Default: 1.0 when `check_answer` accepts it; an env with partial credit
        (the fraction of tests passed) or slow grading overrides this."""
        return float(self.check_answer(response)), {}

    def reference_answer(self) -> str:
        """The expected answer, shown in transcripts."""
        return ""

    def messages(self) -> list[Message]:
        return [*self.convo_prefix, {"role": "user", "content": self.question()}]

    def stop_condition(self) -> StopCondition:
        return self.renderer.get_stop_sequences()

    async def initial_observation(self) -> tuple[tinker.types.ModelInput, StopCondition]:
        return self.renderer.build_generation_prompt(self.messages()), self.stop_condition()

    async def step(self, action: Action) -> StepResult:
        from tinker.types import ModelInput

        message, termination = self.renderer.parse_response(action)
        text = text_of(message)
        clean = not termination.malformed
        well_formed = float(clean and self.check_format(text))
        correct, metrics = await self.score_answer(text)
        reward = correct + self.format_coef * (well_formed - 1.0)
        return StepResult(
            reward=reward,
            episode_done=True,
            next_observation=ModelInput.empty(),
            next_stop_condition=self.stop_condition(),
            metrics={"correct": correct, "format": well_formed, **metrics},
            logs={"question": self.question(), "response": text, "reference": self.reference_answer()},
        )


@dataclass(frozen=True)
class ProblemGroupBuilder(EnvGroupBuilder):
    """`group_size` envs from one factory (the same problem, attempted `group_size` times)."""

    env_factory: Callable[[], Env]
    group_size: int
    env_name: str = ""
    tags: tuple[str, ...] = field(default=())

    async def make_envs(self) -> Sequence[Env]:
        return [self.env_factory() for _ in range(self.group_size)]

    def logging_tags(self) -> list[str]:
        return list(self.tags) or super().logging_tags()


class SeededProblemDataset(RLDataset):
    """`n_batches` batches of `ctx.groups_per_batch` problems. Problem j of batch i
    is `make_problem(rng)` (a picklable factory of one env) with `rng` seeded by
    (ctx.seed, i, j): the same run sees the same problems, in the same order,
    on every machine and after a resume. Each group is `group_builder(...)`,
    `ProblemGroupBuilder` unless a subclass with group rewards is given."""

    def __init__(
        self,
        ctx: EnvContext,
        make_problem: Callable[[random.Random], Callable[[], Env]],
        n_batches: int,
        group_builder: Callable[..., EnvGroupBuilder] = ProblemGroupBuilder,
    ) -> None:
        self.ctx = ctx
        self.make_problem = make_problem
        self.n_batches = n_batches
        # `group_builder(env_factory, group_size, env_name=...)`: a ProblemGroupBuilder
        # subclass (or a partial of one) adds group-level rewards.
        self.group_builder = group_builder

    def __len__(self) -> int:
        return self.n_batches

    def get_batch(self, index: int) -> Sequence[EnvGroupBuilder]:
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} out of range (dataset has {self.n_batches})")
        out = []
        for j in range(self.ctx.groups_per_batch):
            rng = random.Random(f"{self.ctx.seed}/{index}/{j}")
            out.append(self.group_builder(self.make_problem(rng), self.ctx.group_size, env_name=self.ctx.env_name))
        return out
