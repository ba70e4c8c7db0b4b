"""Checkpoints: resuming is exact, names cannot escape, files are safetensors + JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ADAM = dict(learning_rate=5e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.01, grad_clip_norm=1.0)


def batches(h: Any, n: int) -> list[list[Any]]:
    rng = np.random.default_rng(42)
    return [[h.datum(h.random_tokens(rng, 10), weights=[1.0] * 9) for _ in range(2)] for _ in range(n)]


def step(tc: Any, data: list[Any]) -> float:
    from tinker import types

    fb = tc.forward_backward(data, "cross_entropy")
    opt = tc.optim_step(types.AdamParams(**ADAM))
    loss = fb.result().metrics["loss:sum"]
    opt.result()
    return loss


@pytest.mark.parametrize("rank", [4, 0], ids=["lora", "full"])
def test_resume_with_optimizer_is_identical_to_never_stopping(h: Any, service32: Any, rank: int) -> None:
    data = batches(h, 4)
    straight = service32.create_lora_training_client(h.MODEL, rank=rank, seed=1)
    for d in data[:2]:
        step(straight, d)
    saved = straight.save_state(f"resume-{rank}").result()
    straight_losses = [step(straight, d) for d in data[2:]]

    resumed = service32.create_lora_training_client(h.MODEL, rank=rank, seed=99)  # a different start, overwritten
    resumed.load_state_with_optimizer(saved.path).result()
    resumed_losses = [step(resumed, d) for d in data[2:]]

    assert resumed_losses == straight_losses  # bit for bit
    a, b = straight.trainable_parameters(), resumed.trainable_parameters()
    assert a.keys() == b.keys()
    for n in a:
        assert torch.equal(a[n], b[n]), n


def loss(tc: Any, data: list[Any]) -> float:
    return tc.forward(data, "cross_entropy").result().metrics["loss:sum"]


def test_service_creates_client_from_state(h: Any, service32: Any) -> None:
    """Both factories restore the saved weights; with the optimizer the next step is
    the one the saving client took, without it a fresh optimizer's step differs."""
    data = batches(h, 3)
    tc = service32.create_lora_training_client(h.MODEL, rank=2)
    step(tc, data[0])
    path = tc.save_state("from-state").result().path
    saved_loss = step(tc, data[1])  # the saved weights' loss on data[1], then the step the saver takes
    after_saver_step = loss(tc, data[2])

    with_opt = service32.create_training_client_from_state_with_optimizer(path)
    weights_only = service32.create_training_client_from_state(path)
    assert weights_only.get_base_model() == with_opt.get_base_model() == h.MODEL
    for restored in (with_opt, weights_only):
        assert loss(restored, data[1]) == saved_loss  # the saved weights, bit for bit
        assert step(restored, data[1]) == saved_loss
    assert loss(with_opt, data[2]) == after_saver_step  # the restored Adam moments take the same step
    assert loss(weights_only, data[2]) != pytest.approx(after_saver_step, rel=1e-4)  # a fresh Adam does not


def test_state_files_are_safetensors_and_json(h: Any, service32: Any) -> None:
    tc = service32.create_lora_training_client(h.MODEL, rank=2)
    step(tc, batches(h, 1)[0])
    folder = Path(tc.save_state("files").result().path)
    assert folder.parent == service32.checkpoint_dir / "weights"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "optimizer.safetensors", "weights.safetensors"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["base_model"] == h.MODEL and meta["lora_rank"] == 2 and meta["optimizer_steps"] == 1
    # a bare name resolves inside the checkpoint directory too: the weights come back
    probe = batches(h, 2)[1]
    saved = loss(tc, probe)
    step(tc, probe)
    assert loss(tc, probe) != saved
    assert tc.load_state("files").result().path == str(folder)
    assert loss(tc, probe) == saved


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", "..", ".hidden", "", "x" * 200, "a\\b"])
def test_checkpoint_names_cannot_escape(h: Any, service32: Any, name: str) -> None:
    from cookbook_cli.errors import CookbookError

    tc = service32.create_lora_training_client(h.MODEL, rank=2)
    for save in (tc.save_state, tc.save_weights_for_sampler):
        with pytest.raises(CookbookError, match="is not allowed") as info:
            save(name)
        assert "\n" not in str(info.value)


def test_existing_name_needs_overwrite(h: Any, service32: Any) -> None:
    from cookbook_cli.errors import CookbookError

    tc = service32.create_lora_training_client(h.MODEL, rank=2)
    tc.save_state("twice").result()
    with pytest.raises(CookbookError, match="already exists"):
        tc.save_state("twice").result()
    tc.save_state("twice", overwrite=True).result()


def test_load_errors_are_one_line(h: Any, service32: Any, tmp_path: Path) -> None:
    from cookbook_cli.errors import CookbookError

    tc = service32.create_lora_training_client(h.MODEL, rank=2)
    other = service32.create_lora_training_client(h.MODEL, rank=3)
    path = other.save_state("rank3").result().path
    sampler = tc.save_weights_for_sampler("sampler-not-state").result().path
    cases = [
        (path, "saved from 'random:tiny:llama3' \\(LoRA rank 3\\); this client trains 'random:tiny:llama3' \\(LoRA rank 2\\)"),
        (str(tmp_path / "nowhere"), "no checkpoint at"),
        (str(tmp_path), "not a local-engine checkpoint"),
        (sampler, "holds sampler weights"),
        ("never-saved", "not a local-engine checkpoint"),
    ]
    for target, message in cases:
        with pytest.raises(CookbookError, match=message) as info:
            tc.load_state(target).result()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("rank", [2, 0], ids=["lora", "full"])
def test_sampler_weights_round_trip(h: Any, service32: Any, rank: int) -> None:
    from tinker import types

    tc = service32.create_lora_training_client(h.MODEL, rank=rank)
    step(tc, batches(h, 1)[0])
    path = tc.save_weights_for_sampler(f"sampler-{rank}").result().path
    prompt = types.ModelInput.from_ints(tc.get_tokenizer().encode("Sampler weights round trip"))
    live = tc.save_weights_and_get_sampling_client().compute_logprobs(prompt).result()
    loaded = tc.create_sampling_client(path)
    assert loaded.get_base_model() == h.MODEL
    np.testing.assert_allclose(np.array(loaded.compute_logprobs(prompt).result()[1:]), np.array(live[1:]), rtol=1e-5, atol=1e-5)
    files = {p.name for p in Path(path).iterdir()}
    assert ("adapter_model.safetensors" in files) if rank else ({"model.safetensors", "tokenizer.json"} <= files)
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in Path(path).iterdir())
