"""Built-in env `arithmetic`: synthetic addition problems, generated offline.

"What is 37 + 58?" The response is correct when the first integer in it is
the sum, and well formed when it is just that integer and ends at the stop
sequence (see `ProblemEnv` for the reward).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
from collections.abc import Callable

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.problem_env import ProblemEnv, SeededProblemDataset
from cookbook_cli.rl.types import Env, EnvContext, RLDataset, RLDatasetBuilder
from cookbook_cli.types import Message

_INT = re.compile(r"-?\d+")
TEST_SEED_OFFSET = 1_000_003
_FEW_SHOT: list[Message] = [
    {"role": "user", "content": "What is 4 + 3?"},
    {"role": "assistant", "content": "7"},
]


def few_shot_messages() -> list[Message]:
    """The solved example every problem starts with (the `arithmetic` benchmark uses it too)."""
    return [dict(m) for m in _FEW_SHOT]  # type: ignore[misc]


class AdditionEnv(ProblemEnv):
    def __init__(self, renderer, a: int, b: int, few_shot: bool = True, format_coef: float = 0.1) -> None:  # type: ignore[no-untyped-def]
        super().__init__(renderer, _FEW_SHOT if few_shot else None, format_coef)
        self.a = a
        self.b = b

    def question(self) -> str:
        return f"What is {self.a} + {self.b}?"

    def reference_answer(self) -> str:
        return str(self.a + self.b)

    def check_answer(self, response: str) -> bool:
        m = _INT.search(response)
        return m is not None and int(m.group()) == self.a + self.b

    def check_format(self, response: str) -> bool:
        return _INT.fullmatch(response.strip()) is not None


@chz.chz
class ArithmeticBuilder(RLDatasetBuilder):
    """Addition of two random integers in [min_operand, max_operand]."""

    min_operand: int = chz.field(default=0, doc="smallest operand")
    max_operand: int = chz.field(default=99, doc="largest operand")
    few_shot: bool = chz.field(default=True, doc="start with one solved example")
    format_coef: float = chz.field(default=0.1, doc="penalty for a response that is not just the number")
    n_batches: int = chz.field(default=1000, doc="batches in the dataset: training steps unless --max-steps")
    n_test_batches: int = chz.field(default=4, doc="batches in the test split (cookbook eval env), drawn apart from training")

    default_max_tokens = 16

    def __call__(self, ctx: EnvContext) -> tuple[RLDataset, RLDataset | None]:
        if self.min_operand > self.max_operand:
            raise CookbookError(f"env.min_operand ({self.min_operand}) is above env.max_operand ({self.max_operand})")

        def make(rng: random.Random) -> Callable[[], Env]:
            a = rng.randint(self.min_operand, self.max_operand)
            b = rng.randint(self.min_operand, self.max_operand)
            return functools.partial(AdditionEnv, ctx.renderer, a, b, self.few_shot, self.format_coef)

        # The test problems come from their own seed, so they are not the first training batches.
        test_ctx = dataclasses.replace(ctx, seed=ctx.seed + TEST_SEED_OFFSET)
        return SeededProblemDataset(ctx, make, self.n_batches), SeededProblemDataset(test_ctx, make, self.n_test_batches)
