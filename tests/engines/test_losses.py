"""Each built-in loss: the local engine's loss, per-token outputs and gradients
equal a reference written out here from the formula in Tinker's docs, on an
independent copy of the model, in float64 (agreement to ~1e-10)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

LENGTHS = (7, 12, 4)  # unequal, so padding and masking are exercised


def reference_loss(name: str, lp: torch.Tensor, inputs: dict[str, torch.Tensor], cfg: dict[str, float]) -> torch.Tensor:
    """Tinker's formulas, written independently of cookbook_cli.engines.losses."""
    if name == "cross_entropy":
        return (-lp * inputs["weights"]).sum()
    q, adv = inputs["logprobs"], inputs["advantages"]
    ratio = torch.exp(lp - q)
    if name == "importance_sampling":
        return -(ratio * adv).sum()
    if name == "ppo":
        clipped = torch.clamp(ratio, cfg["clip_low_threshold"], cfg["clip_high_threshold"])
        return -torch.where(ratio * adv < clipped * adv, ratio * adv, clipped * adv).sum()
    if name == "cispo":
        clipped = torch.clamp(ratio, cfg["clip_low_threshold"], cfg["clip_high_threshold"]).detach()
        return -(clipped * lp * adv).sum()
    if name == "dro":
        return -(lp * adv - 0.5 * cfg["beta"] * (lp - q) ** 2).sum()
    raise AssertionError(name)


def make_data(h: Any, tc: Any, name: str, seed: int) -> list[Any]:
    """Data whose sampler logprobs sit near the model's, so ratios straddle the clip range."""
    rng = np.random.default_rng(seed)
    seqs = [h.random_tokens(rng, n + 1) for n in LENGTHS]
    if name == "cross_entropy":
        return [h.datum(s, weights=rng.integers(0, 2, size=len(s) - 1) * rng.uniform(0.5, 2.0, size=len(s) - 1)) for s in seqs]
    plain = [h.datum(s) for s in seqs]
    current = tc.forward(plain, "cross_entropy").result().loss_fn_outputs
    data = []
    for s, out in zip(seqs, current):
        lp = out["logprobs"].to_numpy()
        q = lp + rng.normal(0.0, 0.4, size=lp.shape)
        data.append(h.datum(s, logprobs=q, advantages=rng.normal(0.0, 1.0, size=lp.shape)))
    return data


def reference(model: torch.nn.Module, data: list[Any], name: str, cfg: dict[str, float]) -> tuple[float, list[np.ndarray]]:
    """Loss and per-datum logprobs, one sequence at a time (no batching, no padding)."""
    total = torch.zeros((), dtype=torch.float64)
    lps = []
    for d in data:
        ids = torch.tensor([d.model_input.to_ints()])
        targets = torch.from_numpy(d.loss_fn_inputs["target_tokens"].to_numpy())
        logits = model(input_ids=ids).logits[0].double()
        lp = torch.log_softmax(logits, dim=-1)[torch.arange(len(targets)), targets]
        inputs = {k: torch.from_numpy(v.to_numpy()).double() for k, v in d.loss_fn_inputs.items() if k != "target_tokens"}
        total = total + reference_loss(name, lp, inputs, cfg)
        lps.append(lp.detach().numpy())
    total.backward()
    return float(total.detach()), lps


CASES = [
    ("cross_entropy", None, {}),
    ("importance_sampling", None, {}),
    ("ppo", None, {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
    ("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.05}, {"clip_low_threshold": 0.9, "clip_high_threshold": 1.05}),
    ("cispo", None, {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
    ("cispo", {"clip_low_threshold": 0.7, "clip_high_threshold": 1.3}, {"clip_low_threshold": 0.7, "clip_high_threshold": 1.3}),
    ("dro", None, {"beta": 0.05}),
    ("dro", {"beta": 0.7}, {"beta": 0.7}),
]


def check_against_reference(h: Any, tc: Any, name: str, config: dict[str, float] | None, cfg: dict[str, float], seed: int) -> None:
    data = make_data(h, tc, name, seed)
    ref_model = copy.deepcopy(tc.model)  # an independent copy: same weights, separate grads
    params = tc.trainable_parameters()
    for p in params.values():
        p.grad = None

    out = tc.forward_backward(data, name, config).result()
    ref_loss, ref_lps = reference(ref_model, data, name, cfg)

    assert out.metrics["loss:sum"] == pytest.approx(ref_loss, rel=1e-9, abs=1e-9)
    for got, want in zip(out.loss_fn_outputs, ref_lps):
        # outputs are float32 TensorData, as on Tinker
        np.testing.assert_allclose(got["logprobs"].to_numpy(), want, rtol=1e-6, atol=1e-6)
        assert got["logprobs"].dtype == "float32"
        assert list(got["logprobs"].shape) == list(want.shape)
    ref_params = dict(ref_model.named_parameters())
    checked = 0
    for pname, p in params.items():
        want = ref_params[pname].grad
        assert p.grad is not None and want is not None, pname
        torch.testing.assert_close(p.grad, want, rtol=1e-8, atol=1e-11)
        checked += int(want.abs().sum() > 0)
    assert checked > 0  # some gradient is non-zero, so the comparison means something
    forward_only = tc.forward(data, name, config).result()
    assert forward_only.metrics["loss:sum"] == pytest.approx(ref_loss, rel=1e-9, abs=1e-9)
    for p in params.values():
        p.grad = None


@pytest.fixture(scope="module")
def full_ft(service64: Any, h: Any) -> Any:
    return service64.create_lora_training_client(h.MODEL, rank=0)


# A fixed data seed per loss (hash(str) is salted per process, so it would change every run).
SEEDS = {name: 100 + i for i, name in enumerate(dict.fromkeys(c[0] for c in CASES))}


@pytest.mark.parametrize(("name", "config", "cfg"), CASES, ids=[f"{c[0]}-{'custom' if c[1] else 'default'}" for c in CASES])
def test_builtin_loss_matches_formula_full_finetune(h: Any, full_ft: Any, name: str, config: Any, cfg: dict[str, float]) -> None:
    check_against_reference(h, full_ft, name, config, cfg, seed=SEEDS[name])


@pytest.mark.parametrize("name", ["cross_entropy", "ppo"])
def test_builtin_loss_matches_formula_lora(h: Any, service64: Any, name: str) -> None:
    from tinker import types

    tc = service64.create_lora_training_client(h.MODEL, rank=4, seed=3)
    # One step first, so LoRA's B is no longer zero and every adapter tensor gets gradient.
    warm = make_data(h, tc, "cross_entropy", seed=1)
    tc.forward_backward(warm, "cross_entropy")
    tc.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    cfg = {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2} if name == "ppo" else {}
    check_against_reference(h, tc, name, None, cfg, seed=7)


def test_ppo_data_exercises_both_clip_sides(h: Any, full_ft: Any) -> None:
    data = make_data(h, full_ft, "ppo", seed=5)
    outs = full_ft.forward(data, "cross_entropy").result().loss_fn_outputs
    ratios = np.concatenate([np.exp(o["logprobs"].to_numpy() - d.loss_fn_inputs["logprobs"].to_numpy()) for o, d in zip(outs, data)])
    assert (ratios < 0.8).any() and (ratios > 1.2).any() and ((ratios > 0.8) & (ratios < 1.2)).any()


def test_builtin_as_custom_loss_gives_same_gradients(h: Any, full_ft: Any) -> None:
    """The same loss through forward_backward_custom (the path plugins take)."""
    from cookbook_cli.engines.losses import BUILTIN_LOSSES

    data = make_data(h, full_ft, "dro", seed=11)
    params = full_ft.trainable_parameters()
    builtin = full_ft.forward_backward(data, "dro", {"beta": 0.3}).result()
    grads = {n: p.grad.clone() for n, p in params.items()}
    for p in params.values():
        p.grad = None
    custom = full_ft.forward_backward_custom(data, BUILTIN_LOSSES["dro"].as_custom_loss({"beta": 0.3})).result()
    assert custom.metrics["loss:sum"] == pytest.approx(builtin.metrics["loss:sum"], rel=1e-10)
    for n, p in params.items():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-8, atol=1e-12)
        p.grad = None


def test_gradients_accumulate_until_optim_step(h: Any, full_ft: Any) -> None:
    data = make_data(h, full_ft, "cross_entropy", seed=2)
    params = full_ft.trainable_parameters()
    full_ft.forward_backward(data, "cross_entropy").result()
    once = {n: p.grad.clone() for n, p in params.items()}
    full_ft.forward_backward(data, "cross_entropy").result()
    for n, p in params.items():
        torch.testing.assert_close(p.grad, 2 * once[n])
        p.grad = None


def test_two_dimensional_targets(h: Any, full_ft: Any) -> None:
    """target_tokens of shape (N, K): K candidate tokens per position, as Tinker allows."""
    from tinker import types

    rng = np.random.default_rng(0)
    tokens = h.random_tokens(rng, 6)
    targets = rng.integers(0, 128256, size=(6, 3))
    weights = rng.uniform(0, 1, size=(6, 3)).astype(np.float32)
    d = types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": types.TensorData.from_numpy(targets), "weights": types.TensorData.from_numpy(weights)},
    )
    out = full_ft.forward([d], "cross_entropy").result()
    lp = out.loss_fn_outputs[0]["logprobs"].to_numpy()
    assert lp.shape == (6, 3)
    with torch.no_grad():
        logits = full_ft.model(input_ids=torch.tensor([tokens])).logits[0].double().log_softmax(-1)
    want = logits.gather(-1, torch.from_numpy(targets)).numpy()
    np.testing.assert_allclose(lp, want, rtol=1e-6)
    assert out.metrics["loss:sum"] == pytest.approx(float(-(want * weights).sum()), rel=1e-6)


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("ppo", {"clip_low": 0.9}, "has no config key 'clip_low'"),
        ("cross_entropy", {"beta": 1.0}, "valid: none"),
        ("crossentropy", None, "Did you mean 'cross_entropy'"),
    ],
)
def test_bad_loss_name_or_config_is_one_line(h: Any, full_ft: Any, name: str, config: Any, message: str) -> None:
    from cookbook_cli.errors import CookbookError

    with pytest.raises(CookbookError, match=message) as info:
        full_ft.forward_backward(make_data(h, full_ft, "cross_entropy", seed=0), name, config)
    assert "\n" not in str(info.value)


def test_missing_rl_inputs_name_the_datum(h: Any, full_ft: Any) -> None:
    from cookbook_cli.errors import CookbookError

    data = make_data(h, full_ft, "cross_entropy", seed=0)
    with pytest.raises(CookbookError, match=r"datum 0 lacks loss_fn_inputs\['logprobs'\]"):
        full_ft.forward_backward(data, "importance_sampling").result()
