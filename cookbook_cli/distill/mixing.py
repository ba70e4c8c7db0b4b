"""Several teachers, one per prompt source, mixed in every batch.

Source i (a prompt dataset or an env's dataset) contributes `counts[i]` of the
batch's `groups_per_batch` groups: its weight's share, rounded by largest
remainder so the counts add up. Every group builder is wrapped in a
`SourcedGroupBuilder` that says which source (and so which teacher) it
belongs to; its label is added to the group's logging tags, so env metrics
are reported per teacher too.
"""

from __future__ import annotations

from collections.abc import Sequence


from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.types import Env, EnvGroupBuilder, Metrics, RLDataset, Trajectory



def group_counts(weights: Sequence[float], groups_per_batch: int, labels: Sequence[str]) -> list[int]:
    """Groups per batch of each source: proportional to its weight, summing to groups_per_batch."""
    if any(w <= 0 for w in weights):
        bad = next(i for i, w in enumerate(weights) if w <= 0)
        raise CookbookError(f"teacher {labels[bad]!r} has weight {weights[bad]}; weights must be > 0")
    total = sum(weights)
    exact = [w / total * groups_per_batch for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: groups_per_batch - sum(counts)]:
        counts[i] += 1
    for i, c in enumerate(counts):
        if c == 0:
            raise CookbookError(
                f"teacher {labels[i]!r} gets 0 of the {groups_per_batch} groups of a batch at its weight "
                f"({weights[i]:g} of {total:g}); raise --groups-per-batch or its weight"
            )
    return counts


class SourcedGroupBuilder(EnvGroupBuilder):
    """A group builder of source `source` (labelled `label`), delegating to `inner`."""

    def __init__(self, inner: EnvGroupBuilder, source: int, label: str) -> None:
        self.inner = inner
        self.source = source
        self.label = label

    async def make_envs(self) -> Sequence[Env]:
        return await self.inner.make_envs()

    async def compute_group_rewards(self, trajectories: list[Trajectory], envs: Sequence[Env]) -> list[tuple[float, Metrics]]:
        return await self.inner.compute_group_rewards(trajectories, envs)

    def logging_tags(self) -> list[str]:
        return [*self.inner.logging_tags(), self.label]

    async def cleanup(self) -> None:
        await self.inner.cleanup()


class MixedDataset(RLDataset):
    """Batch i is batch i of every source, each builder tagged with its source."""

    def __init__(self, sources: Sequence[RLDataset], labels: Sequence[str]) -> None:
        self.sources = list(sources)
        self.labels = list(labels)

    def __len__(self) -> int:
        return min(len(s) for s in self.sources)

    def get_batch(self, index: int) -> Sequence[EnvGroupBuilder]:
        out: list[EnvGroupBuilder] = []
        for i, (src, label) in enumerate(zip(self.sources, self.labels, strict=True)):
            out.extend(SourcedGroupBuilder(b, i, label) for b in src.get_batch(index))
        return out
