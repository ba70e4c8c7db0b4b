"""From trajectory groups to training Datums.

Advantages are group-centred: each episode's return minus the mean return of
its group (the GRPO baseline). Every token the policy sampled gets its
episode's advantage and mask 1; observation tokens get advantage 0 and mask 0.

A multi-turn episode whose every observation extends the previous
observation + action (the usual chat case) becomes one sequence; when an
observation does not extend what came before (the env rewrote history), a new
sequence starts. Each sequence becomes a Datum shifted for next-token
prediction: `model_input` is the sequence without its last token;
`target_tokens`, `logprobs` (the sampler's), `advantages` and `mask` align
with the targets.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.types import Trajectory, TrajectoryGroup

if TYPE_CHECKING:
    import tinker.types

logger = logging.getLogger("cookbook_cli.rl")


def compute_advantages(groups: list[TrajectoryGroup]) -> list[list[float]]:
    """Per group, each episode's return minus the group's mean return."""
    out = []
    for g in groups:
        returns = g.total_rewards()
        mean = sum(returns) / len(returns) if returns else 0.0
        out.append([r - mean for r in returns])
    return out


def is_constant_reward(group: TrajectoryGroup, tol: float = 1e-12) -> bool:
    returns = group.total_rewards()
    return max(returns) - min(returns) <= tol if returns else True


def remove_constant_reward_groups(groups: list[TrajectoryGroup]) -> list[TrajectoryGroup]:
    """Drop groups whose episodes all earned the same return (their advantages are all zero).
    When every group is constant, one is kept so that the step still has data."""
    kept = [g for g in groups if not is_constant_reward(g)]
    if not kept and groups:
        logger.info("every group has a constant reward: this step has no learning signal")
        return groups[:1]
    return kept


@dataclass
class TokenSequence:
    """One training sequence before shifting: a value per token."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    advantages: list[float] = field(default_factory=list)
    mask: list[float] = field(default_factory=list)

    def extend(self, tokens: list[int], logprobs: list[float], advantage: float, mask: float) -> None:
        self.tokens.extend(tokens)
        self.logprobs.extend(logprobs)
        self.advantages.extend([advantage] * len(tokens))
        self.mask.extend([mask] * len(tokens))


def _tokens_of(ob: tinker.types.ModelInput) -> list[int]:
    try:
        return ob.to_ints()
    except ValueError:
        raise CookbookError(
            "RL observations must be token chunks (EncodedTextChunk); image and other chunks are not supported"
        ) from None


def trajectory_to_sequences(traj: Trajectory, advantage: float) -> list[TokenSequence]:
    """The trajectory as unshifted sequences, merging turns whose observation
    extends the sequence so far."""
    seqs: list[TokenSequence] = []
    cur = TokenSequence()
    for tr in traj.transitions:
        ob = _tokens_of(tr.ob)
        if cur.tokens and ob[: len(cur.tokens)] == cur.tokens:
            new_ob = ob[len(cur.tokens) :]
        else:
            if cur.tokens:
                seqs.append(cur)
                cur = TokenSequence()
            new_ob = ob
        cur.extend(new_ob, [0.0] * len(new_ob), 0.0, 0.0)
        cur.extend(list(tr.ac.tokens), list(tr.ac.logprobs), advantage, 1.0)
    if cur.tokens:
        seqs.append(cur)
    return seqs


def sequence_to_datum(seq: TokenSequence) -> tinker.types.Datum:
    """The next-token Datum of a sequence, with the sampler's logprobs, the
    advantages and the action mask as per-token inputs."""
    from cookbook_cli.data.datum import next_token_datum

    if len(seq.tokens) < 2:
        raise CookbookError("an RL training sequence needs at least 2 tokens (an observation and an action)")
    return next_token_datum(seq.tokens, logprobs=seq.logprobs, advantages=seq.advantages, mask=seq.mask)


@dataclass(frozen=True)
class DatumSource:
    """Where a datum came from: its group and trajectory in the batch."""

    group: int
    trajectory: int


def assemble_training_data(
    groups: list[TrajectoryGroup], advantages: list[list[float]]
) -> tuple[list[tinker.types.Datum], list[DatumSource]]:
    """Datums for every trajectory of every group, and where each came from.
    Trajectories that sampled no tokens (empty actions only) give no datum."""
    data = []
    sources = []
    for gi, (g, advs) in enumerate(zip(groups, advantages, strict=True)):
        for ti, (traj, adv) in enumerate(zip(g.trajectories, advs, strict=True)):
            for seq in trajectory_to_sequences(traj, adv):
                if len(seq.tokens) < 2 or not any(seq.mask[1:]):
                    continue
                data.append(sequence_to_datum(seq))
                sources.append(DatumSource(gi, ti))
    return data, sources


def without_mask(datum: tinker.types.Datum) -> tinker.types.Datum:
    """The datum as the engine's RL losses take it (target_tokens, logprobs, advantages)."""
    from tinker.types import Datum

    return Datum(
        model_input=datum.model_input,
        loss_fn_inputs={k: v for k, v in datum.loss_fn_inputs.items() if k != "mask"},
    )


def reward_stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }
