"""The interfaces an RL environment implements, and the data that rollouts produce.

An `Env` is one single-use episode at the token level: it gives an initial
observation (a ModelInput) with a stop condition, and answers each action
(the sampled tokens) with a `StepResult`. An `EnvGroupBuilder` makes the group
of envs that share one problem; rewards are centred within that group, and the
builder may add group-level rewards once every episode in it has finished
(pairwise preferences, rankings). An `RLDataset` hands out batches of group
builders, and an `RLDatasetBuilder` (a chz class, registered through
`register_envs`) makes the dataset from an `EnvContext` that the recipe fills
in (renderer, tokenizer, group size, batch size, seed).

Group builders cross process boundaries (rollout workers), so they pickle by
registry name: unpickling first looks the env name up in the `register_envs`
registry, which loads the plugin that provides it in the receiving process (or
fails there with a one-line error naming the env), then restores the object.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import chz

from cookbook_cli.completers import StopCondition, TokensWithLogprobs  # re-exported: envs import them from here

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.tokenizers import Tokenizer

Action: TypeAlias = list[int]
"""Sampled token ids."""
Metrics: TypeAlias = dict[str, float]
"""Numbers averaged into the training metrics."""
Logs: TypeAlias = dict[str, Any]
"""Diagnostics shown in transcripts, never aggregated."""


@dataclass
class StepResult:
    """What an env returns for one action."""

    reward: float
    episode_done: bool
    next_observation: tinker.types.ModelInput
    next_stop_condition: StopCondition
    metrics: Metrics = field(default_factory=dict)
    logs: Logs = field(default_factory=dict)


class Env(ABC):
    """One episode for one agent. Single use: made by an EnvGroupBuilder, run once, dropped."""

    @abstractmethod
    async def initial_observation(self) -> tuple[tinker.types.ModelInput, StopCondition]:
        """The first prompt and the stop condition for sampling the first action."""

    @abstractmethod
    async def step(self, action: Action) -> StepResult:
        """Answer the agent's action (its sampled tokens)."""


@dataclass
class Transition:
    """One observation, the action sampled for it, and the reward it earned."""

    ob: tinker.types.ModelInput
    ac: TokensWithLogprobs
    reward: float
    episode_done: bool
    metrics: Metrics = field(default_factory=dict)
    logs: Logs = field(default_factory=dict)


@dataclass
class Trajectory:
    """A whole episode: its transitions and the observation after the last action."""

    transitions: list[Transition]
    final_ob: tinker.types.ModelInput

    @property
    def total_step_reward(self) -> float:
        return sum(t.reward for t in self.transitions)


@dataclass(frozen=True)
class RolloutError:
    """An env that raised: which kind of error, and its message (one line)."""

    error_type: str
    message: str
    where: str  # "make_envs", "initial_observation", "step" or "compute_group_rewards"


class EnvGroupBuilder(ABC):
    """Makes the envs of one group (e.g. `group_size` copies of one problem).

    Set `env_name` (the registry name of the env that made this builder; the
    datasets of `EnvContext` do it with `ctx.env_name`) so the builder pickles
    by that name.
    """

    env_name: str = ""

    @abstractmethod
    async def make_envs(self) -> Sequence[Env]:
        """The envs of this group, in order."""

    async def compute_group_rewards(
        self, trajectories: list[Trajectory], envs: Sequence[Env]
    ) -> list[tuple[float, Metrics]]:
        """A reward (and metrics) for each finished episode that depends on the whole
        group, added to the episode's step rewards. The default adds nothing."""
        return [(0.0, {}) for _ in trajectories]

    def logging_tags(self) -> list[str]:
        """Names under which this group's metrics are also reported (e.g. the env's name)."""
        return [self.env_name] if self.env_name else []

    async def cleanup(self) -> None:
        """Release what make_envs acquired; called once the group is done, even after errors."""

    def __reduce__(self) -> Any:
        if not self.env_name:
            return object.__reduce__(self)
        cls = type(self)
        return (_restore_group_builder, (self.env_name, cls.__module__, cls.__qualname__, dict(self.__dict__)))


def _restore_group_builder(env_name: str, module: str, qualname: str, state: dict[str, Any]) -> EnvGroupBuilder:
    from cookbook_cli.plugins import registry

    registry.envs.get(env_name)  # loads the providing plugin here, or a one-line error naming the env
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    builder = object.__new__(obj)
    builder.__dict__.update(state)
    return builder


@dataclass
class TrajectoryGroup:
    """The finished episodes of one group (those whose env did not raise)."""

    trajectories: list[Trajectory]
    final_rewards: list[float]  # from compute_group_rewards, one per trajectory
    metrics: list[Metrics]  # from compute_group_rewards, one per trajectory
    tags: list[str] = field(default_factory=list)
    errors: list[RolloutError] = field(default_factory=list)

    def total_rewards(self) -> list[float]:
        """Each episode's return: its step rewards plus its group reward."""
        return [t.total_step_reward + r for t, r in zip(self.trajectories, self.final_rewards, strict=True)]


class RLDataset(ABC):
    """Batches of group builders, by index."""

    @abstractmethod
    def get_batch(self, index: int) -> Sequence[EnvGroupBuilder]: ...

    @abstractmethod
    def __len__(self) -> int: ...


@dataclass(frozen=True)
class EnvContext:
    """What the recipe gives a dataset builder."""

    env_name: str
    renderer: Renderer
    tokenizer: Tokenizer
    group_size: int
    groups_per_batch: int
    seed: int = 0


@chz.chz
class RLDatasetBuilder:
    """Configuration of an environment (a chz class: every field is settable from
    the command line as `env.FIELD=VALUE`), and the factory of its datasets.

    Subclasses implement `__call__(ctx) -> (train dataset, test dataset or None)`.
    `default_max_tokens` is the per-turn sampling budget the recipe uses when
    the run does not set `max_tokens`.
    """

    default_max_tokens = 256

    def local_defaults(self) -> dict[str, Any]:
        """Run settings (model, renderer, learning_rate, lora_rank) that suit this env on
        the local engine when the user gives none: e.g. a small random model that
        can learn a toy env. The default suggests nothing."""
        return {}

    def __call__(self, ctx: EnvContext) -> tuple[RLDataset, RLDataset | None]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(ctx)")
