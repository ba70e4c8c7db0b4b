"""Prompts for on-policy distillation, as an RL environment whose reward is 0.

The student answers each prompt; all of the learning signal comes from the
teacher's per-token grades, so the RL sampler, rollouts and datums apply
unchanged. Prompts come from

- a prompt file (`prompt_file`, kind "prompt"): a JSONL of conversations
  (`{"messages": [...]}`) that end in a user turn; a line whose conversation
  already ends with an assistant turn is refused, naming the file and line;
- any supervised dataset builder (`conversations`, `hf`, a plugin's): each
  conversation with its last assistant turn (and what follows it) dropped.

`PromptDataset` serves `epochs` passes over the prompts, each pass in a seeded
order, `groups_per_batch` prompts per batch and `group_size` samples per
prompt: batch i is a function of (seed, i) alone, so a resumed run sees the
same prompts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import chz

from cookbook_cli.conversations import Conversation, parse_conversation, refuse_system_last
from cookbook_cli.user_files import iter_jsonl, prompts_path
from cookbook_cli.data.builders import SupervisedDatasetBuilder
from cookbook_cli.data.supervised import split_train_test
from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.types import Action, Env, EnvGroupBuilder, RLDataset, StepResult, StopCondition

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.renderers.base import Renderer


@chz.chz
class PromptFileBuilder(SupervisedDatasetBuilder):
    """A JSONL file of conversations that end in a user turn (prompts for the student)."""

    path: str = chz.field(doc="JSONL file of {\"messages\": [...]} lines, each ending in a user turn (`sample`: the prompts shipped with cookbook)")
    test_size: float = chz.field(default=0.0, doc="held-out prompts: a fraction below 1, or a count")

    def describe(self) -> str:
        return self.path

    def load(self, seed: int) -> tuple[list[Conversation], list[Conversation]]:
        path = prompts_path(self.path)
        if not path.exists():
            raise CookbookError(f"prompt file {self.path!r} does not exist")
        if path.is_dir():
            raise CookbookError(f"prompt file {self.path!r} is a directory; give a .jsonl file of conversations")
        prompts = []
        for _, where, obj in iter_jsonl(path, "prompt file"):
            conv = parse_conversation(obj, where)
            refuse_system_last(conv, where)
            if conv.messages[-1]["role"] == "assistant":
                raise CookbookError(
                    f"{where}: the conversation already ends with an assistant turn; a prompt ends with the user's "
                    "turn; drop its answer, or pass the file with --dataset, which drops each conversation's last assistant turn"
                )
            prompts.append(conv)
        if not prompts:
            raise CookbookError(f"prompt file {self.path!r} holds no prompts")
        size = self.test_size if 0 < self.test_size < 1 else int(round(self.test_size))
        return split_train_test(prompts, size, seed)


def as_prompt(conv: Conversation) -> Conversation | None:
    """The conversation up to its last assistant turn (None when nothing is left)."""
    roles = [m["role"] for m in conv.messages]
    if "assistant" in roles:
        cut = len(roles) - 1 - roles[::-1].index("assistant")
        messages = conv.messages[:cut]
    else:
        messages = list(conv.messages)
    if not messages or messages[-1]["role"] == "assistant":
        return None
    return Conversation(messages, conv.tools)


def load_prompts(builder: SupervisedDatasetBuilder, seed: int, split: str = "train") -> list[Conversation]:
    """The prompts of a prompt file or of a supervised dataset (see the module
    docstring), from its `split`: "train", or "test" (the held-out rows)."""
    if split not in ("train", "test"):
        raise CookbookError(f"prompts split must be train or test, got {split!r}")
    train, test = builder.load(seed)
    rows = train if split == "train" else test
    if not rows:
        raise CookbookError(f"dataset {builder.describe()} has no {split} rows to take prompts from (see its test_size)")
    if isinstance(builder, PromptFileBuilder):
        return rows
    prompts = [p for p in (as_prompt(c) for c in rows) if p is not None]
    if not prompts:
        raise CookbookError(
            f"dataset {builder.describe()} has no conversation with a user turn before its last assistant turn, "
            "so it gives no prompts"
        )
    return prompts


# -- the env ----------------------------------------------------------------------------------------


class PromptEnv(Env):
    """One answer to one prompt; reward 0."""

    def __init__(self, renderer: Renderer, conversation: Conversation) -> None:
        self.renderer = renderer
        self.conversation = conversation

    async def initial_observation(self) -> tuple[tinker.types.ModelInput, StopCondition]:
        conv = self.conversation
        return self.renderer.build_generation_prompt(conv.messages, tools=conv.tools or None), self.renderer.get_stop_sequences()

    async def step(self, action: Action) -> StepResult:
        from tinker.types import ModelInput

        return StepResult(0.0, True, ModelInput.empty(), self.renderer.get_stop_sequences())


class PromptGroupBuilder(EnvGroupBuilder):
    """`group_size` answers to one prompt."""

    def __init__(self, renderer: Renderer, conversation: Conversation, group_size: int) -> None:
        self.renderer = renderer
        self.conversation = conversation
        self.group_size = group_size

    async def make_envs(self) -> Sequence[Env]:
        return [PromptEnv(self.renderer, self.conversation) for _ in range(self.group_size)]


class PromptDataset(RLDataset):
    """Batches of prompt groups (see the module docstring)."""

    def __init__(
        self, prompts: Sequence[Conversation], renderer: Renderer, group_size: int, groups_per_batch: int,
        epochs: int = 1, seed: int = 0, name: str = "prompts",
    ) -> None:
        if len(prompts) < groups_per_batch:
            raise CookbookError(
                f"{name} holds {len(prompts)} prompts, fewer than one batch of {groups_per_batch}; "
                "lower --groups-per-batch (or the teacher's share of it)"
            )
        for i, conv in enumerate(prompts):
            try:
                renderer.build_generation_tokens(conv.messages, tools=conv.tools or None)
            except CookbookError as e:
                raise CookbookError(f"{name} prompt {i}: {e}") from None
        self.prompts = list(prompts)
        self.renderer = renderer
        self.group_size = group_size
        self.groups_per_batch = groups_per_batch
        self.epochs = epochs
        self.seed = seed
        self.per_epoch = len(self.prompts) // groups_per_batch

    def __len__(self) -> int:
        return self.per_epoch * self.epochs

    def order(self, epoch: int) -> list[int]:
        order = list(range(len(self.prompts)))
        random.Random(f"cookbook-distill-prompts:{self.seed}:{epoch}").shuffle(order)
        return order

    def get_batch(self, index: int) -> Sequence[EnvGroupBuilder]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (dataset has {len(self)})")
        epoch, b = divmod(index, self.per_epoch)
        rows = self.order(epoch)[b * self.groups_per_batch : (b + 1) * self.groups_per_batch]
        return [self.make_group(self.prompts[r]) for r in rows]

    def make_group(self, conversation: Conversation) -> EnvGroupBuilder:
        """The group of one prompt (a subclass adds group rewards, e.g. the `preference` env)."""
        return PromptGroupBuilder(self.renderer, conversation, self.group_size)


def prompt_tokens(renderer: Renderer, conv: Conversation) -> list[int]:
    return renderer.build_generation_tokens(conv.messages, tools=conv.tools or None)


