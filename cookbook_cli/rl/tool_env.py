"""Tool-use environments: a task, tools, and a grader, over several turns.

A `ToolUseEnv` is a `MessageEnv` (run on tokens by `EnvFromMessageEnv`): the
tools' specs go to the renderer with every prompt (the model's own format
decides where they are written), each reply is parsed by the renderer, its
tool calls are executed (concurrently, each with its time limit, see
`cookbook_cli.tools.executor`) and their results appended as `tool`
messages carrying the calls' ids. The episode ends

- on a final answer (a reply without tool calls), graded by `grade`;
- at `max_turns` assistant turns, or when the conversation outgrows
  `max_episode_tokens` (the rendered prompt): reward 0, `correct` 0.

Calls that do not parse, unknown tools, bad arguments, timeouts and
exceptions become error results the model reads. A reply whose only calls
did not parse has no call for a `tool` message to answer, so its errors come
back in a `user` message instead.

Metrics (reported once per episode, on its last step): `correct`,
`tool_calls`, `used_tool` (1 when the episode called a tool), `tool_call_rate`
(the share of its turns that called tools), `tool_errors` and
`tool_error/<kind>` (malformed, unknown_tool, bad_arguments, timeout,
exception), `answered`, `turn_limit`, `token_budget`; `env/turns_per_episode`
comes from the RL loop.

`ToolEnvBuilder` makes an env plugin a few lines: name the tools, load the
rows (question, answer), say how an answer is graded.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.message_env import EnvFromMessageEnv, MessageEnv, MessageStepResult
from cookbook_cli.rl.problem_env import ProblemGroupBuilder
from cookbook_cli.rl.types import Env, EnvContext, EnvGroupBuilder, RLDataset, RLDatasetBuilder
from cookbook_cli.types import Message, ToolCall, text_of

if TYPE_CHECKING:
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.tools import Tool

TEST_SEED = 20_25


def solved_example(question: str, tool: str, arguments: dict[str, Any], result: str, answer: str) -> list[Message]:
    """A question, one call of `tool`, its result and the final answer: the
    exchange a tool env shows before its question."""
    import json

    call = ToolCall(tool, json.dumps(arguments), id="call_example")
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": result, "tool_call_id": "call_example", "name": tool},
        {"role": "assistant", "content": answer},
    ]


class ToolUseEnv(MessageEnv):
    """One episode of a task the model may solve with `tools`.

    Subclasses give `task_messages()` (the conversation before the first
    turn) and `grade(answer)` (1.0 for a correct final answer, 0.0 for a
    wrong one, or anything between)."""

    def __init__(
        self,
        tools: Sequence[Tool],
        renderer: Renderer | None = None,
        max_turns: int = 4,
        max_episode_tokens: int | None = None,
    ) -> None:
        from cookbook_cli.tools.executor import tool_table

        if max_turns < 1:
            raise CookbookError(f"max_turns must be at least 1, got {max_turns}")
        self.tool_table = tool_table(tools)
        self.tools = [t.spec() for t in self.tool_table.values()] or None
        self.renderer = renderer
        self.max_turns = max_turns
        self.max_episode_tokens = max_episode_tokens
        self.turns = 0
        self.turns_with_calls = 0
        self.outcomes: list[Any] = []

    def task_messages(self) -> list[Message]:
        raise NotImplementedError(f"{type(self).__name__} must implement task_messages()")

    def grade(self, answer: str) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement grade(answer)")

    def logs(self) -> dict[str, Any]:
        """Shown in transcripts with the final step (e.g. the reference answer)."""
        return {}

    async def initial_messages(self) -> list[Message]:
        return self.task_messages()

    async def step(self, history: list[Message], reply: Message) -> MessageStepResult:
        from cookbook_cli.tools.executor import run_tool_calls

        self.turns += 1
        calls = [c if c.id else dataclasses.replace(c, id=f"call_{self.turns}_{i}") for i, c in enumerate(reply.get("tool_calls") or [])]
        unparsed = list(reply.get("unparsed_tool_calls") or [])
        said: Message = {"role": "assistant", "content": _written(reply)}
        if calls:
            said["tool_calls"] = calls
        conversation = [*history, said]
        if not calls and not unparsed:
            correct = float(self.grade(text_of(reply)))
            return self._end(conversation, correct, answered=1.0)
        self.turns_with_calls += 1
        outcomes = await run_tool_calls([*calls, *unparsed], self.tool_table)
        self.outcomes.extend(outcomes)
        if calls:
            conversation.extend(o.message for o in outcomes)
        else:  # nothing for a tool result to answer
            errors = "\n".join(str(o.message["content"]) for o in outcomes)
            conversation.append({"role": "user", "content": errors})
        if self.turns >= self.max_turns:
            return self._end(conversation, 0.0, turn_limit=1.0)
        if self.max_episode_tokens is not None and self.renderer is not None:
            if self.renderer.build_generation_prompt(conversation, tools=self.tools).length > self.max_episode_tokens:
                return self._end(conversation, 0.0, token_budget=1.0)
        return MessageStepResult(reward=0.0, episode_done=False, next_messages=conversation,
                                 logs={"tool_results": " | ".join(str(o.message["content"])[:200] for o in outcomes)})

    def _end(self, conversation: list[Message], correct: float, **ending: float) -> MessageStepResult:
        from cookbook_cli.tools.executor import tool_call_metrics

        counts = tool_call_metrics(self.outcomes)
        metrics = {
            "correct": correct,
            **counts,
            "used_tool": float(counts["tool_calls"] > 0),
            "tool_call_rate": self.turns_with_calls / self.turns,
            "answered": 0.0,
            "turn_limit": 0.0,
            "token_budget": 0.0,
            **ending,
        }
        used = Counter(o.name for o in self.outcomes if o.name)
        logs = {**self.logs(), "tools_used": ", ".join(f"{n}x{k}" for n, k in used.items()) or "none"}
        return MessageStepResult(reward=correct, episode_done=True, next_messages=conversation, metrics=metrics, logs=logs)


def _written(reply: Message) -> str:
    """The reply's text as the model wrote it: calls that did not parse stay in it
    as text, so the next prompt shows the model what it wrote."""
    text = text_of(reply)
    return text + "".join(u.raw_text for u in reply.get("unparsed_tool_calls") or [])


class QuestionToolEnv(ToolUseEnv):
    """A question with a reference answer, graded by `matches(answer, reference)`;
    `examples` (a solved exchange: question, call, result, answer) go before it."""

    def __init__(
        self,
        tools: Sequence[Tool],
        question: str,
        reference: str,
        matches: Callable[[str, str], bool],
        system_prompt: str = "",
        examples: Sequence[Message] = (),
        **options: Any,
    ) -> None:
        super().__init__(tools, **options)
        self.question = question
        self.reference = reference
        self.matches = matches
        self.system_prompt = system_prompt
        self.examples = list(examples)

    def task_messages(self) -> list[Message]:
        system: list[Message] = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, *self.examples, {"role": "user", "content": self.question}]

    def grade(self, answer: str) -> float:
        return float(self.matches(answer, self.reference))

    def logs(self) -> dict[str, Any]:
        return {"question": self.question, "reference": self.reference}


# -- answer matching ---------------------------------------------------------------------------
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> float | None:
    """The last number written in `text` (thousands separators allowed), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def number_matches(answer: str, reference: str) -> bool:
    """The answer's last number equals the reference number."""
    got, want = last_number(answer), last_number(reference)
    return got is not None and want is not None and abs(got - want) < 1e-6 * max(1.0, abs(want))


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def text_contains(answer: str, reference: str) -> bool:
    """The reference appears in the answer, ignoring case, punctuation and spacing."""
    want = _normalized(reference)
    return bool(want) and f" {want} " in f" {_normalized(answer)} "


# -- the builder base ------------------------------------------------------------------------
def check_tool_setup(ctx: EnvContext, max_turns: int, tools: Callable[[], Sequence[Tool]]) -> None:
    """Refuse, before any model loads, a turn limit below 1, a renderer without a
    tool-call format and unknown tool names (`tools()` looks them up)."""
    if max_turns < 1:
        raise CookbookError(f"env.max_turns must be at least 1, got {max_turns}")
    if not ctx.renderer.supports_tools:
        raise CookbookError(
            f"env {ctx.env_name!r} needs a renderer with a tool-call format; {ctx.renderer.name!r} has none "
            "(pick one with --renderer, e.g. qwen3 or hf_template with a tool-capable template)"
        )
    tools()


def _make_env(builder: ToolEnvBuilder, renderer: Renderer, row: dict[str, str]) -> Env:
    return EnvFromMessageEnv(renderer, builder.make_message_env(row, renderer))


class RowDataset(RLDataset):
    """Batches of `ctx.groups_per_batch` groups over `rows`, reshuffled every epoch
    with a seed from (seed, epoch): the same order on every machine and after a resume."""

    def __init__(self, ctx: EnvContext, rows: list[dict[str, str]], n_batches: int,
                 make_env: Callable[[dict[str, str]], Callable[[], Env]]) -> None:
        self.ctx = ctx
        self.rows = rows
        self.n_batches = n_batches
        self.make_env = make_env

    def __len__(self) -> int:
        return self.n_batches

    def _row(self, k: int) -> dict[str, str]:
        epoch, i = divmod(k, len(self.rows))
        order = list(range(len(self.rows)))
        random.Random(f"{self.ctx.seed}/epoch/{epoch}").shuffle(order)
        return self.rows[order[i]]

    def get_batch(self, index: int) -> Sequence[EnvGroupBuilder]:
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} out of range (dataset has {self.n_batches})")
        n = self.ctx.groups_per_batch
        return [
            ProblemGroupBuilder(self.make_env(self._row(index * n + j)), self.ctx.group_size, env_name=self.ctx.env_name)
            for j in range(n)
        ]


@chz.chz
class ToolEnvBuilder(RLDatasetBuilder):
    """Question-answering with tools. A subclass sets `tool_names` (registered
    tools) or overrides `tools()`, implements `load_rows()` (dicts with
    `question` and `answer`) and `matches(answer, reference)`, and may set
    `default_system_prompt` (the system message of every episode unless
    `env.system_prompt` replaces it), give a solved exchange in `examples()`
    (a small model imitates the call it shows; `env.few_shot=false` drops it)
    or override `make_message_env` for episodes of another kind. A dataset
    read from a Hub id or file uses `env.split` and `env.config_name` (empty:
    `default_config_name`). The first `test_size` rows of a fixed shuffle are
    the test split (`cookbook eval env`), the rest are trained on."""

    max_turns: int = chz.field(default=4, doc="assistant turns before the episode ends unanswered")
    max_episode_tokens: int = chz.field(default=4096, doc="token budget of the whole conversation (prompt included)")
    test_size: int = chz.field(default=20, doc="rows held out as the test split (cookbook eval env)")
    n_batches: int = chz.field(default=1000, doc="batches in the dataset: training steps unless --max-steps")
    system_prompt: str = chz.field(default="", doc="the system message of every episode (empty: the env's own)")
    few_shot: bool = chz.field(default=True, doc="show the env's solved example (a tool call, its result, the answer) first")
    config_name: str = chz.field(default="", doc="the dataset's configuration, for a Hub id (empty: the env's default)")
    split: str = chz.field(default="train", doc="the dataset's split, for a Hub id or file")

    # Class attributes, not options:
    tool_names = ()  # the registered tools episodes get
    default_system_prompt = ""  # the system message when env.system_prompt is empty
    default_config_name = None  # the dataset configuration (a str) when env.config_name is empty

    def tools(self) -> list[Tool]:
        from cookbook_cli.tools import get_tools

        return get_tools(self.tool_names)

    def load_rows(self) -> list[dict[str, str]]:
        raise NotImplementedError(f"{type(self).__name__} must implement load_rows()")

    def matches(self, answer: str, reference: str) -> bool:
        return text_contains(answer, reference)

    def make_message_env(self, row: dict[str, str], renderer: Renderer) -> ToolUseEnv:
        """The episode of one row (override for another kind of `ToolUseEnv`)."""
        return QuestionToolEnv(
            self.tools(), row["question"], row["answer"], self.matches, self.system_prompt or self.default_system_prompt,
            self.examples() if self.few_shot else [], renderer=renderer, max_turns=self.max_turns, max_episode_tokens=self.max_episode_tokens,
        )

    def examples(self) -> list[Message]:
        """A solved exchange shown before every question unless `few_shot` is
        off (default: none)."""
        return []

    def dataset_config(self) -> str | None:
        """The configuration of a Hub dataset: `config_name`, else the env's default."""
        return self.config_name or self.default_config_name

    def __call__(self, ctx: EnvContext) -> tuple[RLDataset, RLDataset | None]:
        if self.test_size < 0:
            raise CookbookError(f"env.test_size must be >= 0, got {self.test_size}")
        check_tool_setup(ctx, self.max_turns, self.tools)
        rows = list(self.load_rows())
        random.Random(TEST_SEED).shuffle(rows)
        test, train = rows[: self.test_size], rows[self.test_size :]
        if not train:
            raise CookbookError(f"env {ctx.env_name!r} has {len(rows)} rows, all held out by env.test_size={self.test_size}")
        make = functools.partial(functools.partial, _make_env, self, ctx.renderer)
        test_ds = RowDataset(dataclasses.replace(ctx, seed=0), test, -(-len(test) // ctx.groups_per_batch), make) if test else None
        return RowDataset(ctx, train, self.n_batches, make), test_ds
