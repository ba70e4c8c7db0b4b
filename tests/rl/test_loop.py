"""The one RL loop, sync and async, on the engine stand-in: staleness bounds, requeues,
envs that raise, NaN rewards, checkpoints and resume."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence

import chz
import pytest
from tinker.types import ModelInput

from cookbook_cli import hookimpl
from cookbook_cli.errors import CookbookError
from cookbook_cli.recipes.rl import RLConfig, train
from cookbook_cli.rl.sampler import OffPolicyPipeline
from cookbook_cli.rl.first_token import FirstTokenBuilder
from cookbook_cli.rl.problem_env import SeededProblemDataset
from cookbook_cli.rl.rollouts import NonFiniteRewardError
from cookbook_cli.engines.standin import StandInService
from cookbook_cli.rl.types import Env, EnvContext, EnvGroupBuilder, RLDataset, RLDatasetBuilder, StepResult
from cookbook_cli.run.options import RunOptions


# -- the pipeline alone, with a scripted trainer -------------------------------------------------


class SleepyEnv(Env):
    def __init__(self, builder: SlowOnce) -> None:
        self.builder = builder

    async def initial_observation(self):
        return ModelInput.from_ints([1, 2]), [0]

    async def step(self, action):
        if self.builder.slow_left > 0:
            # slow the first time: finish only once the trainer is `wait_versions` steps further
            self.builder.slow_left -= 1
            while self.builder.pipeline.version < self.builder.wait_versions:
                await asyncio.sleep(0.005)
        else:
            await asyncio.sleep(0.01)
        return StepResult(float(action[0] % 2), True, ModelInput.empty(), [0])


class SlowOnce(EnvGroupBuilder):
    def __init__(self, ident: int, wait_versions: int = 0) -> None:
        self.ident = ident
        self.wait_versions = wait_versions
        self.slow_left = 2 if wait_versions else 0  # both envs of the group
        self.pipeline: OffPolicyPipeline | None = None

    async def make_envs(self) -> Sequence[Env]:
        return [SleepyEnv(self), SleepyEnv(self)]

    def logging_tags(self) -> list[str]:
        return [f"b{self.ident}"]


class ListDataset(RLDataset):
    def __init__(self, builders: list[EnvGroupBuilder], per_batch: int) -> None:
        self.builders = builders
        self.per_batch = per_batch

    def __len__(self) -> int:
        return len(self.builders) // self.per_batch

    def get_batch(self, index: int):
        return self.builders[index * self.per_batch : (index + 1) * self.per_batch]


class Versioned:
    def __init__(self, version: int) -> None:
        self.version = version


def make_completer(client, seed=None):
    async def complete(model_input, stop, num_samples=1):
        from cookbook_cli.rl.types import TokensWithLogprobs

        await asyncio.sleep(0.01)
        return [TokensWithLogprobs([client.version + i], [-1.0]) for i in range(num_samples)]

    return complete


async def _drive(pipeline: OffPolicyPipeline, steps: int, train_seconds: float, log: list) -> None:
    pipeline.start()
    try:
        for step in range(steps):
            batch = await pipeline.next_batch(step)
            log.append(batch)
            await asyncio.sleep(train_seconds)  # the optimizer step
            pipeline.publish(Versioned(step + 1), step + 1)
    finally:
        await pipeline.stop()


def test_sync_mode_samples_every_group_with_the_weights_it_trains():
    builders = [SlowOnce(i) for i in range(40)]
    pipeline = OffPolicyPipeline(ListDataset(builders, 4), 0, 4, 0, make_completer, Versioned(0), 0)
    log: list = []
    asyncio.run(_drive(pipeline, 8, 0.03, log))
    assert [b.staleness for b in log] == [[0, 0, 0, 0]] * 8
    # nothing was sampled ahead (and wasted): exactly the trained groups were started
    assert sorted(pipeline.started_versions) == [v for b in log for v in b.versions]
    assert all(b.requeued == 0 for b in log)


@pytest.mark.parametrize("k", [1, 2])
def test_async_mode_requeues_groups_older_than_the_bound(k):
    # builder 1 takes longer than K + 1 training steps the first time it is sampled
    builders = [SlowOnce(i, wait_versions=k + 2 if i == 1 else 0) for i in range(80)]
    pipeline = OffPolicyPipeline(ListDataset(builders, 2), 0, 2, k, make_completer, Versioned(0), 0)
    builders[1].pipeline = pipeline
    log: list = []
    asyncio.run(_drive(pipeline, 14, 0.05, log))
    trained = [s for b in log for s in b.staleness]
    assert max(trained) <= k
    assert max(trained) == k  # sampling really ran ahead of training
    assert sum(b.requeued for b in log) == 1
    assert builders[1].slow_left == 0
    # the requeued group came back, was sampled on newer weights and trained once
    trained_tags = [g.tags[0] for b in log for g in b.groups]
    assert trained_tags.count("b1") == 1
    (late,) = [(b.step, v) for b in log for g, v in zip(b.groups, b.versions) if g.tags == ["b1"]]
    assert late[1] >= k + 2 and late[0] - late[1] <= k
    assert len(trained_tags) == 14 * 2 == len(set(trained_tags))


# -- the recipe on the stand-in engine ------------------------------------------------------------------


def standin(toy_tokenizer, **kw):
    kw.setdefault("sample_latency", 0.02)
    kw.setdefault("train_latency", 0.02)
    return StandInService(toy_tokenizer, **kw)


def config(tmp_path, name="run", **kw):
    kw.setdefault("group_size", 2)
    kw.setdefault("groups_per_batch", 3)
    kw.setdefault("num_groups_to_log", 1)
    return RLConfig(env=kw.pop("env", FirstTokenBuilder()), log_dir=str(tmp_path / name), **kw)


def rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("k", [0, 1, 3])
def test_trained_groups_never_exceed_the_staleness_bound(tmp_path, toy_tokenizer, k):
    svc = standin(toy_tokenizer, latency_jitter=0.9, seed=k)
    result = train(config(tmp_path, max_steps=12, max_steps_off_policy=k), RunOptions(service=svc, progress=False, on_log=lambda m: None))
    metrics = rows(result.log_dir)
    assert [r["step"] for r in metrics] == list(range(12))
    assert all(r["staleness/max"] <= k for r in metrics)
    if k == 0:
        assert all(r["staleness/mean"] == 0 for r in metrics)
    else:
        assert any(r["staleness/max"] >= 1 for r in metrics)
    for key in ("env/reward/mean", "env/reward/std", "env/hit", "env/first_token/reward/mean", "tokens/action",
                "time/step", "time/train", "time/wait_for_groups", "groups/requeued", "optim/kl_sample_train_v1",
                "optim/entropy", "lr"):
        assert key in metrics[0], key
    assert (result.log_dir / "transcripts" / "step_000000.html").read_text().count("episode ") == 2
    assert json.loads((result.log_dir / "config.json").read_text())["env"]["name"] == "first_token"


class Flaky(Env):
    """Raises in step for every third env; otherwise a fixed reward."""

    count = 0

    def __init__(self, reward: float) -> None:
        self.reward = reward
        Flaky.count += 1
        self.bad = Flaky.count % 3 == 0

    async def initial_observation(self):
        return ModelInput.from_ints([1, 2, 3]), [0]

    async def step(self, action):
        if self.bad:
            raise KeyError("missing fixture")
        return StepResult(self.reward, True, ModelInput.empty(), [0])


@chz.chz
class FlakyBuilder(RLDatasetBuilder):
    reward: float = 1.0

    def __call__(self, ctx: EnvContext):
        import functools

        return SeededProblemDataset(ctx, lambda rng: functools.partial(Flaky, self.reward * rng.random()), 50), None


class FlakyPlugin:
    @hookimpl
    def register_envs(self, register):
        register("flaky", FlakyBuilder, "raises now and then")


def test_an_env_that_raises_is_counted_and_training_goes_on(tmp_path, toy_tokenizer, cookbook_plugin, caplog):
    cookbook_plugin(FlakyPlugin(), name="flaky-plugin")
    result = train(config(tmp_path, env=FlakyBuilder(), max_steps=4, group_size=3, model="random:tiny:" + toy_tokenizer.source, renderer="role_colon"), RunOptions(service=standin(toy_tokenizer), progress=False, on_log=lambda m: None))
    metrics = rows(result.log_dir)
    assert len(metrics) == 4
    assert sum(r["env_errors/total"] for r in metrics) > 0
    assert all(r["env_errors/total"] == r.get("env_errors/KeyError", 0) for r in metrics)
    assert "raised in step and its episode was dropped: KeyError" in caplog.text


def test_a_nan_reward_stops_the_run_with_a_clear_error(tmp_path, toy_tokenizer, cookbook_plugin):
    cookbook_plugin(FlakyPlugin(), name="flaky-plugin")
    cfg = config(tmp_path, env=FlakyBuilder(reward=math.nan), max_steps=4, model="random:tiny:" + toy_tokenizer.source, renderer="role_colon")
    with pytest.raises(NonFiniteRewardError, match=r"env 'flaky' returned a non-finite reward \(nan\)") as info:
        train(cfg, RunOptions(service=standin(toy_tokenizer), progress=False, on_log=lambda m: None))
    assert isinstance(info.value, CookbookError) and "\n" not in str(info.value)


def test_resume_continues_from_the_last_checkpoint_with_each_step_logged_once(tmp_path, toy_tokenizer):
    svc = standin(toy_tokenizer)
    first = train(config(tmp_path, max_steps=4, save_every=2), RunOptions(service=svc, progress=False, on_log=lambda m: None))
    records = [json.loads(line) for line in (first.log_dir / "checkpoints.jsonl").read_text().splitlines()]
    assert [(c["step"], c["final"]) for c in records] == [(2, False), (4, True)]
    second = train(config(tmp_path, max_steps=7, save_every=2), RunOptions(if_exists="resume", service=svc, progress=False, on_log=lambda m: None))
    assert second.start_step == 4 and second.steps_done == 7
    metrics = rows(second.log_dir)
    assert [r["step"] for r in metrics] == list(range(7))
    # the trainer came back with the weights of step 4: its first sampler is version 4
    assert metrics[4]["sampler/version_min"] == 4
    with pytest.raises(CookbookError, match="other settings .*group_size"):
        train(config(tmp_path, max_steps=8, group_size=5), RunOptions(if_exists="resume", service=svc, progress=False, on_log=lambda m: None))


def test_kl_penalty_and_constant_group_removal_in_the_loop(tmp_path, toy_tokenizer):
    result = train(config(tmp_path, max_steps=3, kl_penalty_coef=0.5, remove_constant_reward_groups=True), RunOptions(service=standin(toy_tokenizer), progress=False, on_log=lambda m: None))
    for r in rows(result.log_dir):
        # the stand-in's reference scores every token as the sampler did: no drift
        assert r["kl_policy_ref"] == pytest.approx(0.0, abs=1e-6)
        assert 1 <= r["groups/trained"] <= r["groups"]


class CustomLossPlugin:
    calls: list = []

    @staticmethod
    def reinforce(data, logprobs_list):
        import torch

        CustomLossPlugin.calls.append((sorted(data[0].loss_fn_inputs), [lp.shape for lp in logprobs_list]))
        total = sum((-(lp * d.loss_fn_inputs["advantages"].to_torch()).sum() for d, lp in zip(data, logprobs_list)), torch.zeros(()))
        return total, {"reinforce:sum": float(total.detach())}

    @hookimpl
    def register_loss_functions(self, register):
        register("reinforce", CustomLossPlugin.reinforce, "plain REINFORCE")


def test_a_registered_custom_loss_trains_through_forward_backward_custom(tmp_path, cookbook_plugin):
    pytest.importorskip("torch")
    cookbook_plugin(CustomLossPlugin(), name="reinforce-plugin")
    CustomLossPlugin.calls.clear()
    result = train(config(tmp_path, max_steps=2, loss_fn="reinforce", group_size=4), RunOptions(progress=False, on_log=lambda m: None))
    assert len(CustomLossPlugin.calls) == 2
    keys, shapes = CustomLossPlugin.calls[0]
    assert keys == ["advantages", "logprobs", "target_tokens"]  # the mask stays on the recipe's side
    assert len(shapes) == 3 * 4
    assert all("optim/reinforce:sum" in r for r in rows(result.log_dir))


class AlwaysFails(Env):
    async def initial_observation(self):
        raise ConnectionRefusedError("sandbox down")

    async def step(self, action):
        raise AssertionError("never reached")


@chz.chz
class AlwaysFailsBuilder(RLDatasetBuilder):
    def __call__(self, ctx: EnvContext):
        return SeededProblemDataset(ctx, lambda rng: AlwaysFails, 1000), None


class AlwaysFailsPlugin:
    @hookimpl
    def register_envs(self, register):
        register("always_fails", AlwaysFailsBuilder, "raises every time")


def test_an_env_that_always_raises_stops_the_run_with_one_line(tmp_path, toy_tokenizer, cookbook_plugin):
    cookbook_plugin(AlwaysFailsPlugin(), name="fails-plugin")
    cfg = config(tmp_path, env=AlwaysFailsBuilder(), model="random:tiny:" + toy_tokenizer.source, renderer="role_colon")
    with pytest.raises(CookbookError, match=r"env 'always_fails' raised in every one of the last 12 groups \(24 ConnectionRefusedError\)"):
        train(cfg, RunOptions(service=standin(toy_tokenizer), progress=False, on_log=lambda m: None))
