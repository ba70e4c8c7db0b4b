"""Learning on the local engine: a tiny random model learns the toy env `first_token`
(reward 1 when the response starts with "A") in synchronous and asynchronous mode.

The env suggests its model for the local engine: `random:tiny:<34-token toy
tokenizer>` (about 75k parameters), full fine-tuning at learning rate 3e-2.
At the start the target is sampled about once in 34 tries."""

from __future__ import annotations

import json

import pytest

from cookbook_cli.recipes.rl import RLConfig, train
from cookbook_cli.rl.first_token import FirstTokenBuilder
from cookbook_cli.run.options import RunOptions

pytest.importorskip("torch")
pytest.importorskip("transformers")


def rewards(log_dir):
    rows = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["env/reward/mean"] for r in rows], rows


@pytest.mark.parametrize(("k", "steps"), [(0, 10), (1, 14)], ids=["sync", "async"])
def test_mean_reward_rises_to_at_least_0_8(tmp_path, k, steps):
    cfg = RLConfig(
        env=FirstTokenBuilder(target="A"),
        log_dir=str(tmp_path / f"k{k}"),
        max_steps=steps,
        group_size=8,
        groups_per_batch=8,
        max_steps_off_policy=k,
        save_every=0,
        num_groups_to_log=1,
        engine_options={"device": "cpu"},
    )
    result = train(cfg, RunOptions(progress=False, on_log=lambda m: None))
    curve, rows = rewards(result.log_dir)
    print(f"max_steps_off_policy={k}: mean reward per step", [round(r, 2) for r in curve])
    assert len(curve) == steps
    assert curve[0] <= 0.3  # the start: the target is rare
    assert sum(curve[-3:]) / 3 >= 0.8, curve
    assert max(r["staleness/max"] for r in rows) == k
    # on-policy, the learner's logprobs are the sampler's (up to float noise)
    if k == 0:
        assert all(abs(r["optim/kl_sample_train_v1"]) < 1e-3 for r in rows)
    assert result.final_checkpoint is not None and result.final_checkpoint["final"]


def test_seeded_runs_sample_the_same_tokens(tmp_path):
    def run(d):
        cfg = RLConfig(
            env=FirstTokenBuilder(target="A"), log_dir=str(tmp_path / d), max_steps=3, group_size=8,
            groups_per_batch=4, save_every=0, num_groups_to_log=0, engine_options={"device": "cpu"},
        )
        return rewards(train(cfg, RunOptions(progress=False, on_log=lambda m: None)).log_dir)[0]

    assert run("a") == run("b")
