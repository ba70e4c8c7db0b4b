"""The on-policy loop on the engine stand-in: the RL sampler's staleness bound
holds, several teachers share each batch by weight, and the grades reach the
advantages."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cookbook_cli.engines.standin import StandInService
from cookbook_cli.recipes.distill import DistillConfig, TeacherSource, train
from cookbook_cli.run.options import RunOptions


@pytest.fixture
def toy_tokenizer():
    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    return get_tokenizer(toy_tokenizer_path())


def prompt_source(toy_model, prompt_file, weight=1.0):
    from cookbook_cli.distill.prompts import PromptFileBuilder

    return TeacherSource(model=toy_model, prompts=PromptFileBuilder(path=str(prompt_file)), weight=weight)


def rows(log_dir):
    return [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("k", [0, 1, 2])
def test_groups_are_never_staler_than_the_bound(tmp_path, toy_model, toy_tokenizer, prompt_file, k):
    cfg = DistillConfig(
        teachers=[prompt_source(toy_model, prompt_file)], model=toy_model, renderer="role_colon", log_dir=str(tmp_path / "run"),
        max_steps=6, epochs=3, group_size=2, groups_per_batch=4, max_steps_off_policy=k, max_tokens=4, save_every=0,
        num_groups_to_log=1,
    )
    service = StandInService(toy_tokenizer, latency=0.01, sample_latency=0.02, latency_jitter=0.9, seed=k)
    result = train(cfg, RunOptions(service=service, progress=False, on_log=lambda m: None))
    metrics = rows(result.log_dir)
    assert [r["step"] for r in metrics] == list(range(6))
    assert max(r["staleness/max"] for r in metrics) <= k
    if k == 0:
        assert all(r["staleness/max"] == 0 for r in metrics)
    for r in metrics:
        assert r["datums"] == 8 and r["tokens/action"] == 32
        # the stand-in's sampler and teacher both give every token -log V: nothing to learn, and it says so
        assert r["teacher_kl"] == pytest.approx(0.0, abs=1e-6) and r["student_entropy"] == pytest.approx(3.526, abs=1e-3)
    assert (result.log_dir / "transcripts" / "step_000005.html").is_file()
    assert result.final_checkpoint is not None and result.final_checkpoint["final"]


def test_teachers_share_each_batch_by_weight(tmp_path, toy_model, toy_tokenizer, prompt_file, monkeypatch):
    from cookbook_cli.rl import sampler

    seen: list[Counter[str]] = []
    next_batch = sampler.OffPolicyPipeline.next_batch

    async def spy(self, step):
        batch = await next_batch(self, step)
        seen.append(Counter(b.label for b in batch.builders))
        return batch

    monkeypatch.setattr(sampler.OffPolicyPipeline, "next_batch", spy)
    a = prompt_source(toy_model, prompt_file, weight=3.0)
    b = TeacherSource(model="random:small:" + toy_model.split(":", 2)[2], prompts=a.prompts, weight=1.0)
    cfg = DistillConfig(
        teachers=[a, b], model=toy_model, renderer="role_colon", log_dir=str(tmp_path / "run"), max_steps=2, group_size=2,
        groups_per_batch=4, max_tokens=3, save_every=0, num_groups_to_log=0,
    )
    result = train(cfg, RunOptions(service=StandInService(toy_tokenizer, latency=0.0, sample_latency=0.0), progress=False, on_log=lambda m: None))
    assert seen == [Counter({"tokenizer-json": 3, "tokenizer-json-1": 1})] * 2
    for r in rows(result.log_dir):
        assert {"teacher_kl/tokenizer-json", "teacher_kl/tokenizer-json-1", "env/tokenizer-json-1/ac_tokens_per_episode"} <= set(r)


def test_the_teachers_grades_become_the_advantages(tmp_path, toy_model, toy_tokenizer, prompt_file, monkeypatch):
    import math

    import numpy as np

    from cookbook_cli.distill import teachers
    from cookbook_cli.rl import sampler

    class Teacher:
        async def compute_logprobs_async(self, prompt):
            return [None] + [-1.0] * (prompt.length - 1)

    async def client(self, service):
        return Teacher()

    trained = []
    train_on_batch = sampler.train_on_batch

    async def spy(tc, data, *args):
        trained.extend(data)
        return await train_on_batch(tc, data, *args)

    monkeypatch.setattr(teachers.Teacher, "client", client)
    monkeypatch.setattr(sampler, "train_on_batch", spy)
    cfg = DistillConfig(
        teachers=[prompt_source(toy_model, prompt_file)], model=toy_model, renderer="role_colon", log_dir=str(tmp_path / "run"),
        max_steps=1, group_size=2, groups_per_batch=2, max_tokens=3, save_every=0, num_groups_to_log=0, kl_coef=0.5,
    )
    result = train(cfg, RunOptions(service=StandInService(toy_tokenizer, latency=0.0, sample_latency=0.0), progress=False, on_log=lambda m: None))
    student = -math.log(toy_tokenizer.vocab_size)  # the stand-in sampler's logprob of every token
    assert len(trained) == 4
    for d in trained:
        mask = d.loss_fn_inputs["mask"].to_numpy() > 0
        adv = d.loss_fn_inputs["advantages"].to_numpy()
        assert mask.sum() == 3 and np.allclose(adv[mask], -0.5 * (student + 1.0)) and not adv[~mask].any()
    (row,) = rows(result.log_dir)
    assert row["teacher_kl"] == pytest.approx(student + 1.0)


def test_a_teacher_with_another_tokenizer_grades_rerendered_completions(tmp_path, toy_model, toy_tokenizer, prompt_file, monkeypatch):
    import math

    import numpy as np

    from cookbook_cli.distill.prompts import PromptFileBuilder
    from cookbook_cli.rl import sampler

    trained = []
    train_on_batch = sampler.train_on_batch

    async def spy(tc, data, *args):
        trained.extend(data)
        return await train_on_batch(tc, data, *args)

    monkeypatch.setattr(sampler, "train_on_batch", spy)
    teacher = TeacherSource(model="random:tiny:llama3", renderer="role_colon", prompts=PromptFileBuilder(path=str(prompt_file)))
    cfg = DistillConfig(
        teachers=[teacher], model=toy_model, renderer="role_colon", log_dir=str(tmp_path / "run"), max_steps=2, group_size=2,
        groups_per_batch=4, max_tokens=6, save_every=0, num_groups_to_log=1,
    )
    result = train(cfg, RunOptions(service=StandInService(toy_tokenizer, latency=0.0, sample_latency=0.0), progress=False, on_log=lambda m: None))
    for r in rows(result.log_dir):
        assert "teacher/unaligned" not in r and r["datums"] == 8 and r["tokens/action"] == 48 and math.isfinite(r["teacher_kl"])
    # The stand-in teacher gives each of its own (llama3) tokens -log 34 (its vocabulary is the toy's); re-aligned
    # onto the student's characters, a completion's teacher logprobs still add up to a whole number of teacher tokens.
    per_token = math.log(toy_tokenizer.vocab_size)
    uneven = 0
    for d in trained:
        mask = d.loss_fn_inputs["mask"].to_numpy() > 0
        teacher_lp = d.loss_fn_inputs["advantages"].to_numpy()[mask] + d.loss_fn_inputs["logprobs"].to_numpy()[mask]
        k = -teacher_lp.sum() / per_token
        assert k >= 1 and abs(k - round(k)) < 1e-3, k
        uneven += not np.allclose(teacher_lp, teacher_lp[0])
    assert uneven  # shares differ between pieces of a completion: the grade is per piece, not per completion
