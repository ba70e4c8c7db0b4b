"""Distillation learns, offline on CPU: a teacher is trained with `train sl` on
the shipped sample (a tiny random model over the 34-token toy tokenizer, the
`role_colon` format), then a fresh random student is distilled from it on the
sample's held-out prompts, on-policy (sync and async, K = 1) and off-policy
(top-K soft targets on the training split). In every mode the teacher KL
falls by at least half and the student's NLL of the teacher's own completions
of the held-out prompts falls."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from distill_helpers import write_jsonl
from cookbook_cli.run.options import RunOptions

pytest.importorskip("torch")
pytest.importorskip("transformers")

HELD_OUT = 40  # the sample's conversations the teacher never trains on
STEPS_SFT = 16
STEPS = 8
DEVICE = {"device": "cpu"}


def sample_split():
    from cookbook_cli.data.builders import ConversationsBuilder

    return ConversationsBuilder(test_size=HELD_OUT)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, toy_model) -> Path:
    from cookbook_cli.recipes.sl import SLConfig, train

    t0 = time.monotonic()
    log_dir = tmp_path_factory.mktemp("teacher") / "sft"
    cfg = SLConfig(
        model=toy_model, renderer="role_colon", dataset=sample_split(), log_dir=str(log_dir), batch_size=8, max_steps=STEPS_SFT,
        learning_rate=0.03, lr_schedule="constant", lora_rank=0, max_length=160, eval_every=0, save_every=0, engine_options=DEVICE,
    )
    result = train(cfg, RunOptions(progress=False, on_log=lambda m: None))
    print(f"teacher: train sl, {STEPS_SFT} steps in {time.monotonic() - t0:.0f}s, final test NLL {result.final_test_nll:.3f}")
    return log_dir


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, teacher, toy_model):
    """The held-out prompts as a prompt file, and the teacher's completions of them."""
    from tinker.types import ModelInput, SamplingParams

    from cookbook_cli.distill.prompts import as_prompt, prompt_tokens
    from cookbook_cli.distill.teachers import resolve_teacher
    from cookbook_cli.engines.builtin import create_local
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    _, test = sample_split().load(0)
    prompts = [p for p in (as_prompt(c) for c in test) if p is not None]
    path = write_jsonl(tmp_path_factory.mktemp("prompts") / "held_out.jsonl", [p.to_json() for p in prompts])
    renderer = get_renderer("role_colon", get_tokenizer(toy_tokenizer_path()))
    service = create_local(**DEVICE, checkpoint_dir=str(tmp_path_factory.mktemp("ck")))
    try:
        client = service.create_sampling_client(model_path=resolve_teacher(str(teacher), "local").model_path)
        params = SamplingParams(max_tokens=16, temperature=0.7, stop=renderer.get_stop_sequences(), seed=7)
        futures = [(p, client.sample(ModelInput.from_ints(p), 1, params)) for p in (prompt_tokens(renderer, c) for c in prompts[:16])]
        completions = [(p, list(f.result().sequences[0].tokens)) for p, f in futures]
    finally:
        service.close()
    return path, completions


def student_nll(model_path: str | None, base_model: str, completions) -> float:
    """The student's mean NLL per token of the teacher's completions."""
    from tinker.types import ModelInput

    from cookbook_cli.engines.builtin import create_local

    service = create_local(**DEVICE)
    try:
        client = service.create_sampling_client(model_path=model_path) if model_path else service.create_sampling_client(base_model=base_model)
        total = n = 0.0
        futures = [(len(p), client.compute_logprobs(ModelInput.from_ints(p + c))) for p, c in completions]
        for start, f in futures:
            lps = f.result()[start:]
            total -= sum(lps)
            n += len(lps)
    finally:
        service.close()
    return total / n


def rows(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


CASES = {
    "on_policy_sync": dict(mode="on_policy", max_steps_off_policy=0),
    "on_policy_async": dict(mode="on_policy", max_steps_off_policy=1),
    "off_policy": dict(mode="off_policy"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_teacher_kl_halves_and_the_students_nll_of_teacher_text_falls(tmp_path, teacher, held_out, toy_model, case):
    from cookbook_cli.distill.prompts import PromptFileBuilder
    from cookbook_cli.recipes.distill import DistillConfig, TeacherSource, train

    prompts, completions = held_out
    opts = dict(CASES[case])
    data = PromptFileBuilder(path=str(prompts)) if opts["mode"] == "on_policy" else sample_split()
    cfg = DistillConfig(
        teachers=[TeacherSource(model=str(teacher), prompts=data)], log_dir=str(tmp_path / case), max_steps=STEPS, group_size=2, groups_per_batch=4,
        max_tokens=12, batch_size=4, max_length=160, epochs=4, learning_rate=0.03, lora_rank=0, save_every=0, num_groups_to_log=1,
        engine_options=DEVICE, **opts,
    )
    t0 = time.monotonic()
    result = train(cfg, RunOptions(progress=False, on_log=lambda m: None))
    seconds = time.monotonic() - t0
    kl = [r["teacher_kl"] for r in rows(result.log_dir)]
    final = result.final_checkpoint["sampler_path"]
    before = student_nll(None, toy_model, completions)
    after = student_nll(str(result.log_dir / final), toy_model, completions)
    print(f"{case}: {len(kl)} steps in {seconds:.0f}s; teacher_kl {[round(x, 3) for x in kl]}; "
          f"student NLL of the teacher's held-out completions {before:.3f} -> {after:.3f}")
    assert len(kl) == STEPS
    assert sum(kl[-3:]) / 3 <= 0.5 * kl[0], kl
    assert after < before
    if opts.get("max_steps_off_policy"):
        assert max(r["staleness/max"] for r in rows(result.log_dir)) <= 1
