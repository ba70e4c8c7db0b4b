"""Running episodes: one env to the end, and a whole group concurrently.

Env code is third-party code: an env that raises (in make_envs,
initial_observation, step or compute_group_rewards) is logged, recorded as a
`RolloutError` and its episode dropped; the rest of the group trains. A
non-finite reward is a bug in the env that silently poisons training, so it
stops the run with a one-line error instead. Errors of the sampler (the
engine) are not env errors and propagate.

Envs of one group whose first observations are identical (the usual case: G
attempts at one problem) are sampled with one call for `num_samples=G`, which
engines batch.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.completers import TokenCompleter
from cookbook_cli.rl.types import (
    Env,
    EnvGroupBuilder,
    RolloutError,
    StopCondition,
    TokensWithLogprobs,
    Trajectory,
    TrajectoryGroup,
    Transition,
)

if TYPE_CHECKING:
    import tinker.types

logger = logging.getLogger("cookbook_cli.rl")


class NonFiniteRewardError(CookbookError):
    """An env or group builder returned NaN or an infinite reward."""


class _EnvFailed(Exception):
    def __init__(self, error: RolloutError) -> None:
        super().__init__(error.message)
        self.error = error


def _builder_name(builder: EnvGroupBuilder) -> str:
    return builder.env_name or type(builder).__name__


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""


def _env_error(where: str, e: BaseException, builder: EnvGroupBuilder) -> RolloutError:
    err = RolloutError(type(e).__name__, _one_line(e), where)
    logger.warning(
        "env %r raised in %s and its episode was dropped: %s: %s", _builder_name(builder), where, err.error_type, err.message
    )
    return err


def check_reward(value: Any, builder: EnvGroupBuilder, where: str) -> float:
    """`value` as a float, or a one-line error when it is not a finite number."""
    try:
        reward = float(value)
    except (TypeError, ValueError):
        raise NonFiniteRewardError(
            f"env {_builder_name(builder)!r} returned a reward that is not a number ({value!r}) from {where}"
        ) from None
    if not math.isfinite(reward):
        raise NonFiniteRewardError(
            f"env {_builder_name(builder)!r} returned a non-finite reward ({reward}) from {where}; "
            "rewards must be finite numbers: fix the env's reward computation"
        )
    return reward


async def _call_env(where: str, builder: EnvGroupBuilder, coro: Any) -> Any:
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except CookbookError:
        raise
    except Exception as e:  # noqa: BLE001 - third-party env code; recorded and dropped
        raise _EnvFailed(_env_error(where, e, builder)) from e


async def run_episode(
    completer: TokenCompleter,
    env: Env,
    builder: EnvGroupBuilder,
    first: tuple[tinker.types.ModelInput, StopCondition, TokensWithLogprobs] | None = None,
) -> Trajectory:
    """Run `env` to the end. `first` is its initial observation, stop condition and
    an already sampled first action (from a batched group call), if any.

    Raises `_EnvFailed` when the env raises."""
    if first is None:
        ob, stop = await _call_env("initial_observation", builder, env.initial_observation())
        (ac,) = await completer(ob, stop, 1)
    else:
        ob, stop, ac = first
    transitions: list[Transition] = []
    while True:
        result = await _call_env("step", builder, env.step(list(ac.tokens)))
        reward = check_reward(result.reward, builder, "Env.step")
        transitions.append(Transition(ob, ac, reward, bool(result.episode_done), dict(result.metrics), dict(result.logs)))
        if result.episode_done:
            return Trajectory(transitions, result.next_observation)
        ob, stop = result.next_observation, result.next_stop_condition
        (ac,) = await completer(ob, stop, 1)


def _key(ob: tinker.types.ModelInput, stop: StopCondition) -> tuple[Any, ...]:
    return (tuple(ob.to_ints()), tuple(stop))


@dataclass
class GroupRollout:
    """The result of one group: its trajectories (None when nothing survived) and the errors."""

    group: TrajectoryGroup | None
    errors: list[RolloutError]
    num_envs: int


async def do_group_rollout(builder: EnvGroupBuilder, completer: TokenCompleter) -> GroupRollout:
    """Make the group's envs, run every episode concurrently, add the group rewards."""
    try:
        envs: Sequence[Env] = await _call_env("make_envs", builder, builder.make_envs())
        return await _run_group(builder, list(envs), completer)
    except _EnvFailed as f:
        return GroupRollout(None, [f.error], 0)
    finally:
        try:
            await builder.cleanup()
        except Exception as e:  # noqa: BLE001 - cleanup of third-party resources must not stop training
            _env_error("cleanup", e, builder)


async def _run_group(builder: EnvGroupBuilder, envs: list[Env], completer: TokenCompleter) -> GroupRollout:
    errors: list[RolloutError] = []

    async def initial(env: Env) -> Any:
        try:
            return await _call_env("initial_observation", builder, env.initial_observation())
        except _EnvFailed as f:
            errors.append(f.error)
            return None

    obs = await asyncio.gather(*(initial(env) for env in envs))
    # One sampling call per distinct first prompt.
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for i, o in enumerate(obs):
        if o is not None:
            by_key.setdefault(_key(*o), []).append(i)
    firsts: dict[int, TokensWithLogprobs] = {}

    async def sample_first(indices: list[int]) -> None:
        ob, stop = obs[indices[0]]
        for i, ac in zip(indices, await completer(ob, stop, len(indices)), strict=True):
            firsts[i] = ac

    await asyncio.gather(*(sample_first(ix) for ix in by_key.values()))

    async def episode(i: int) -> Trajectory | None:
        ob, stop = obs[i]
        try:
            return await run_episode(completer, envs[i], builder, (ob, stop, firsts[i]))
        except _EnvFailed as f:
            errors.append(f.error)
            return None

    alive = sorted(firsts)
    results = await asyncio.gather(*(episode(i) for i in alive))
    kept = [(envs[i], t) for i, t in zip(alive, results) if t is not None]
    if not kept:
        return GroupRollout(None, errors, len(envs))
    trajectories = [t for _, t in kept]
    try:
        group_rewards = await _call_env(
            "compute_group_rewards", builder, builder.compute_group_rewards(trajectories, [e for e, _ in kept])
        )
    except _EnvFailed as f:
        return GroupRollout(None, errors + [f.error], len(envs))
    if len(group_rewards) != len(trajectories):
        raise CookbookError(
            f"env {_builder_name(builder)!r}: compute_group_rewards returned {len(group_rewards)} rewards "
            f"for {len(trajectories)} trajectories"
        )
    final = [check_reward(r, builder, "compute_group_rewards") for r, _ in group_rewards]
    group = TrajectoryGroup(trajectories, final, [dict(m) for _, m in group_rewards], builder.logging_tags(), errors)
    return GroupRollout(group, errors, len(envs))
