"""The asynchronous sampler every on-policy recipe shares (`train rl`, on-policy
distillation): group rollouts started ahead of training by at most
`max_steps_off_policy` (K) steps, handed to the trainer in batches whose groups
are at most K steps stale.

- It keeps starting group rollouts on the newest sampling client it has, each
  tagged with the weights version it sampled from (the number of optimizer
  steps behind those weights).
- The trainer takes finished groups in the order they finish. A group whose
  version is more than K steps behind the step being trained is not trained
  on: its builder goes back to the front of the queue and is sampled again.
- Sampling is admitted ahead of training by at most K batches: while the
  trainer collects step t there may be up to `(K + 1) * groups_per_batch`
  groups started or waiting, and while it trains step t up to
  `K * groups_per_batch` more. With K = 0 nothing is sampled during a
  training step and every group is sampled by the weights it trains: the
  synchronous on-policy loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.rl.types import EnvGroupBuilder, TrajectoryGroup

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import SamplingClient, TrainingClient
    from cookbook_cli.rl.rollouts import GroupRollout
    from cookbook_cli.rl.types import RLDataset

logger = logging.getLogger("cookbook_cli.rl")


@dataclass
class _Sampled:
    builder: EnvGroupBuilder
    version: int
    rollout: GroupRollout
    seconds: float


@dataclass
class _Failure:
    error: BaseException


@dataclass
class StepBatch:
    """The groups of one training step, and how they were collected."""

    step: int
    groups: list[TrajectoryGroup]
    versions: list[int]
    rollout_seconds: list[float]
    requeued: int = 0
    dropped_groups: int = 0
    env_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    wait_seconds: float = 0.0
    builders: list[EnvGroupBuilder] = field(default_factory=list)  # builders[i] made groups[i]

    @property
    def staleness(self) -> list[int]:
        return [self.step - v for v in self.versions]

    def metrics(self) -> dict[str, Any]:
        """How the batch was collected: groups, staleness, env errors, waiting and rollout time."""
        staleness = self.staleness
        out: dict[str, Any] = {
            "groups": len(self.groups),
            "groups/dropped": self.dropped_groups,
            "groups/requeued": self.requeued,
            "staleness/mean": sum(staleness) / len(staleness),
            "staleness/max": max(staleness),
            "sampler/version_min": min(self.versions),
            "env_errors/total": sum(self.env_errors.values()),
            "time/wait_for_groups": self.wait_seconds,
            "time/rollout/mean": sum(self.rollout_seconds) / len(self.rollout_seconds),
        }
        for err, n in sorted(self.env_errors.items()):
            out[f"env_errors/{err}"] = n
        return out


class OffPolicyPipeline:
    """Samples groups ahead of training by at most `max_steps_off_policy` steps,
    and hands the trainer batches whose groups are at most that stale.

    `next_batch(step)` collects one step's groups; `publish(client, version)`
    gives the sampler new weights after an optimizer step."""

    def __init__(
        self,
        dataset: RLDataset,
        start_batch: int,
        groups_per_batch: int,
        max_steps_off_policy: int,
        make_completer: Any,
        sampling_client: SamplingClient,
        version: int,
    ) -> None:
        self.dataset = dataset
        self.next_batch_index = start_batch
        self.first_rollout = start_batch * groups_per_batch  # resumed runs continue the seed sequence
        self.groups_per_batch = groups_per_batch
        self.k = max_steps_off_policy
        self.make_completer = make_completer
        self.client = sampling_client
        self.version = version
        self.consumed_steps = version  # steps whose groups the trainer has taken
        self.builders: collections.deque[EnvGroupBuilder] = collections.deque()
        self.pending = 0  # started and not yet taken by the trainer
        self.collecting = 0  # taken into the batch being collected
        self.results: asyncio.Queue[_Sampled | _Failure] = asyncio.Queue()
        self.changed = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.started_versions: list[int] = []
        self._sampler: asyncio.Task[None] | None = None

    # capacity: see the module docstring
    def _capacity(self) -> int:
        return self.groups_per_batch * (self.version + self.k + 1 - self.consumed_steps)

    def _has_builder(self) -> bool:
        if not self.builders and self.next_batch_index < len(self.dataset):
            self.builders.extend(self.dataset.get_batch(self.next_batch_index))
            self.next_batch_index += 1
        return bool(self.builders)

    def _notify(self) -> None:
        self.changed.set()

    def start(self) -> None:
        self._sampler = asyncio.create_task(self._sample_loop(), name="rl-sampler")

    async def stop(self) -> None:
        tasks = [t for t in [self._sampler, *self.tasks] if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _sample_loop(self) -> None:
        try:
            while True:
                while self.pending + self.collecting < self._capacity() and self._has_builder():
                    builder = self.builders.popleft()
                    self.pending += 1
                    self.started_versions.append(self.version)
                    # the rollout's index seeds its sampling: the same run samples the same tokens
                    seed = self.first_rollout + len(self.started_versions)
                    task = asyncio.create_task(self._rollout(builder, self.client, self.version, seed))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                self.changed.clear()
                await self.changed.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - handed to the trainer, which raises it
            self.results.put_nowait(_Failure(e))

    async def _rollout(self, builder: EnvGroupBuilder, client: SamplingClient, version: int, seed: int) -> None:
        from cookbook_cli.rl.rollouts import do_group_rollout

        t0 = time.monotonic()
        try:
            rollout = await do_group_rollout(builder, self.make_completer(client, seed))
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - handed to the trainer, which raises it
            self.results.put_nowait(_Failure(e))
            return
        self.results.put_nowait(_Sampled(builder, version, rollout, time.monotonic() - t0))

    def exhausted(self) -> bool:
        return self.pending == 0 and not self._has_builder()

    async def next_batch(self, step: int) -> StepBatch:
        """The groups of `step`: `groups_per_batch` of them, or fewer when the dataset ran out."""
        batch = StepBatch(step, [], [], [])
        t0 = time.monotonic()
        while len(batch.groups) < self.groups_per_batch:
            if self.exhausted():
                break
            item = await self.results.get()
            if isinstance(item, _Failure):
                raise item.error
            self.pending -= 1
            for err in item.rollout.errors:
                batch.env_errors[err.error_type] += 1
            if item.rollout.group is None:
                batch.dropped_groups += 1
                self._notify()
                if not batch.groups and batch.dropped_groups >= 4 * self.groups_per_batch:
                    break  # the env fails every time: the caller says so
                continue
            if step - item.version > self.k:
                # Too stale to train on: sample this builder again on newer weights.
                self.builders.appendleft(item.builder)
                batch.requeued += 1
                logger.info("step %d: a group sampled at version %d is too stale; requeued", step, item.version)
                self._notify()
                continue
            self.collecting += 1
            batch.groups.append(item.rollout.group)
            batch.builders.append(item.builder)
            batch.versions.append(item.version)
            batch.rollout_seconds.append(item.seconds)
        self.collecting = 0
        self.consumed_steps = step + 1
        batch.wait_seconds = time.monotonic() - t0
        self._notify()
        return batch

    def publish(self, client: SamplingClient, version: int) -> None:
        self.client = client
        self.version = version
        self._notify()




async def train_on_batch(
    tc: TrainingClient, data: list[Any], loss_fn: str, loss_fn_config: dict[str, float] | None, adam_params: Any
) -> tuple[list[Any], dict[str, float]]:
    """forward_backward then optim_step, submitted back to back; the learner's
    logprobs of each datum's targets, and the step's metrics."""
    from cookbook_cli.engines.losses import forward_backward_with_loss
    from cookbook_cli.rl.data_processing import without_mask

    fb_future = forward_backward_with_loss(tc, [without_mask(d) for d in data], loss_fn, loss_fn_config)
    optim_future = await tc.optim_step_async(adam_params)
    return batch_results(await fb_future, await optim_future, len(data))


def batch_results(fb: Any, optim: Any, n: int) -> tuple[list[Any], dict[str, float]]:
    """What a forward_backward + optim_step of `n` datums gave: the learner's
    logprobs of each datum's targets ([] when the loss returns none) and the
    step's `optim/*` metrics."""
    metrics: dict[str, float] = {}
    for k, v in (fb.metrics or {}).items():
        metrics[f"optim/{k}"] = float(v)
    for k, v in (getattr(optim, "metrics", None) or {}).items():
        metrics[f"optim/{k}"] = float(v)
    logprobs = [out["logprobs"].to_numpy() for out in fb.loss_fn_outputs if "logprobs" in out]
    return (logprobs if len(logprobs) == n else []), metrics
