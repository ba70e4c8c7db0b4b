"""Built-in env `code`: write a Python function; hidden unit tests run in the
sandbox (`cookbook_cli.sandbox`).

The reward is the fraction of tests passed, less `format_coef` when the
response is not one well-formed fenced code block defining the asked-for
function (see `ProblemEnv`). With `env.tools=python` the model may run code
in the sandbox over several turns before its final answer (a `ToolUseEnv`).
Problems come from the shipped MBPP-style sample (offline) or from MBPP /
HumanEval-shaped datasets (`env.dataset=mbpp`, `humaneval`, a Hub id or a
local file)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.code_grader import code_blocks, defines_function, extract_code, grade
from cookbook_cli.rl.code_problems import SAMPLE, CodeProblem, load_problems
from cookbook_cli.rl.message_env import EnvFromMessageEnv, MessageStepResult
from cookbook_cli.rl.problem_env import ProblemEnv, SeededProblemDataset
from cookbook_cli.rl.tool_env import ToolUseEnv, check_tool_setup
from cookbook_cli.rl.types import Env, EnvContext, RLDataset, RLDatasetBuilder
from cookbook_cli.sandbox import SandboxLimits
from cookbook_cli.tools import get_tools
from cookbook_cli.types import Message, text_of

if TYPE_CHECKING:
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.tools import Tool

INSTRUCTION = "Answer with the complete function in one ```python code block."
TOOL_INSTRUCTION = "You may run Python with the python tool to try your code first."
TEST_EVERY = 5  # every fifth problem is held out for the test split
TEST_SEED_OFFSET = 1_000_003


def score_response(problem: CodeProblem, response: str, limits: SandboxLimits) -> tuple[float, dict[str, float]]:
    """The fraction of the hidden tests the response's code passes, with `solved`
    and `timeout`. Blocking (a sandbox run): call it off the event loop."""
    code = extract_code(response)
    if not code.strip() or not defines_function(code, problem.entry_point):
        return 0.0, {"solved": 0.0, "timeout": 0.0}  # nothing to run: spare the sandbox a process
    result = grade(code, list(problem.tests), problem.setup, limits)
    return result.fraction, {"solved": float(result.passed == result.total), "timeout": float(result.limit == "timeout")}


class CodeEnv(ProblemEnv):
    """One answer, graded at once (reward: fraction passed, less the format penalty)."""

    def __init__(self, renderer, problem: CodeProblem, limits: SandboxLimits, format_coef: float = 0.1) -> None:  # type: ignore[no-untyped-def]
        super().__init__(renderer, None, format_coef)
        self.problem = problem
        self.limits = limits

    def question(self) -> str:
        return f"{self.problem.prompt}\n\n{INSTRUCTION}"

    def reference_answer(self) -> str:
        return self.problem.solution

    def check_format(self, response: str) -> bool:
        blocks = code_blocks(response)
        return len(blocks) == 1 and defines_function(blocks[0], self.problem.entry_point)

    def check_answer(self, response: str) -> bool:
        return score_response(self.problem, response, self.limits)[0] == 1.0

    async def score_answer(self, response: str) -> tuple[float, dict[str, float]]:
        return await asyncio.to_thread(score_response, self.problem, response, self.limits)


class CodeToolEnv(ToolUseEnv):
    """Several turns with tools (the sandboxed `python`); the final answer (a
    reply without tool calls) is graded like `CodeEnv`'s, with no format penalty."""

    def __init__(self, tools: Sequence[Tool], problem: CodeProblem, limits: SandboxLimits, **options: Any) -> None:
        super().__init__(tools, **options)
        self.problem = problem
        self.limits = limits
        self.graded: float | None = None

    def task_messages(self) -> list[Message]:
        return [{"role": "user", "content": f"{self.problem.prompt}\n\n{TOOL_INSTRUCTION} {INSTRUCTION}"}]

    async def step(self, history: list[Message], reply: Message) -> MessageStepResult:
        if not reply.get("tool_calls") and not reply.get("unparsed_tool_calls"):
            # The final answer: graded here, off the event loop, for `grade` to return.
            self.graded = (await asyncio.to_thread(score_response, self.problem, text_of(reply), self.limits))[0]
        return await super().step(history, reply)

    def grade(self, answer: str) -> float:
        return self.graded if self.graded is not None else score_response(self.problem, answer, self.limits)[0]

    def logs(self) -> dict[str, Any]:
        return {"question": self.problem.prompt, "reference": self.problem.solution}


def _tool_episode(renderer: Renderer, tool_names: tuple[str, ...], problem: CodeProblem, limits: SandboxLimits, max_turns: int) -> Env:
    return EnvFromMessageEnv(renderer, CodeToolEnv(get_tools(tool_names), problem, limits, renderer=renderer, max_turns=max_turns))


@chz.chz
class CodeBuilder(RLDatasetBuilder):
    """Write a Python function that passes hidden unit tests (run in the sandbox)."""

    dataset: str = chz.field(
        default=SAMPLE, doc="sample (shipped, offline), mbpp, humaneval, a Hub dataset id or a local .jsonl/.parquet file"
    )
    format: str = chz.field(default="auto", doc="row shape: auto (from the columns), sample, mbpp or humaneval")
    split: str | None = chz.field(default=None, doc="the dataset's split (default: test for mbpp/humaneval, else train)")
    timeout_s: float = chz.field(default=5.0, doc="wall and CPU time for one solution's tests, in seconds")
    format_coef: float = chz.field(default=0.1, doc="penalty for a response that is not one code block defining the function")
    n_batches: int = chz.field(default=100, doc="batches in the dataset: training steps unless --max-steps")
    n_test_batches: int = chz.field(default=2, doc="batches of the test split (every fifth problem, held out)")
    tools: str = chz.field(default="", doc="comma-separated registered tools the model may call first (python: run code in the sandbox)")
    max_turns: int = chz.field(default=4, doc="with tools: assistant turns before the episode ends unanswered")

    default_max_tokens = 256

    def local_defaults(self) -> dict[str, Any]:
        # SmolLM2's chat format: on the local engine the default model is then a tiny random
        # model over SmolLM2's tokenizer (a quick offline smoke run, no function ever right);
        # `--model smollm2-135m-instruct` trains the real small instruct model.
        return {"renderer": "smollm2"}

    def __call__(self, ctx: EnvContext) -> tuple[RLDataset, RLDataset | None]:
        if self.timeout_s <= 0:
            raise CookbookError(f"env.timeout_s must be positive, got {self.timeout_s}")
        tool_names = tuple(t.strip() for t in self.tools.split(",") if t.strip())
        if tool_names:
            check_tool_setup(ctx, self.max_turns, functools.partial(get_tools, tool_names))
        problems = load_problems(self.dataset, self.format, self.split)
        train = [p for i, p in enumerate(problems) if i % TEST_EVERY != TEST_EVERY - 1] or problems
        test = [p for i, p in enumerate(problems) if i % TEST_EVERY == TEST_EVERY - 1]
        limits = SandboxLimits(wall_time_s=self.timeout_s, cpu_time_s=self.timeout_s)

        def maker(pool: list[CodeProblem]) -> Callable[[random.Random], Callable[[], Env]]:
            def make(rng: random.Random) -> Callable[[], Env]:
                problem = rng.choice(pool)
                if tool_names:
                    return functools.partial(_tool_episode, ctx.renderer, tool_names, problem, limits, self.max_turns)
                return functools.partial(CodeEnv, ctx.renderer, problem, limits, self.format_coef)

            return make

        test_ctx = dataclasses.replace(ctx, seed=ctx.seed + TEST_SEED_OFFSET)
        test_set = SeededProblemDataset(test_ctx, maker(test), self.n_test_batches) if test else None
        return SeededProblemDataset(ctx, maker(train), self.n_batches), test_set
