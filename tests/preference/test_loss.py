"""The DPO loss against its formula, in float64: on the function itself (value,
metrics and the autograd gradient against the hand-derived one) and through the
local engine's custom-loss path (at step 0, with the policy as its own
reference, h = 0 and the loss is ln 2; the parameter gradient equals the one
from cross_entropy with the hand-derived per-token coefficients)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from preference_helpers import datum, random_pairs
from tinker.types import Datum, TensorData

from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.loss import (
    completion_logprob_sum,
    dpo_loss_fn,
    pair_logprob_sums,
    target_logprobs_from_prompt_logprobs,
)


def logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def test_value_metrics_and_gradient_match_the_formula_in_float64() -> None:
    rng = np.random.default_rng(0)
    beta, pairs = 0.3, 5
    data = random_pairs(rng, pairs)
    lps = [torch.tensor(-rng.uniform(0.1, 4.0, size=d.loss_fn_inputs["weights"].shape[0]), dtype=torch.float64, requires_grad=True) for d in data]
    ws = [np.asarray(d.loss_fn_inputs["weights"].data, dtype=np.float64) for d in data]
    ref = [(float(-rng.uniform(5, 20)), float(-rng.uniform(5, 20))) for _ in range(pairs)]

    loss, metrics = dpo_loss_fn(ref, beta)(data, lps)
    loss.backward()

    s = [float((lp.detach().numpy() * w).sum()) for lp, w in zip(lps, ws)]
    h = [(s[2 * i] - ref[i][0]) - (s[2 * i + 1] - ref[i][1]) for i in range(pairs)]
    expected = -sum(logsigmoid(beta * x) for x in h) / pairs
    assert loss.dtype == torch.float64
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert metrics["dpo_loss"] == pytest.approx(expected, rel=1e-12)
    assert metrics["accuracy"] == sum(x > 0 for x in h) / pairs
    chosen = [beta * (s[2 * i] - ref[i][0]) for i in range(pairs)]
    rejected = [beta * (s[2 * i + 1] - ref[i][1]) for i in range(pairs)]
    assert metrics["chosen_reward"] == pytest.approx(np.mean(chosen), rel=1e-12)
    assert metrics["rejected_reward"] == pytest.approx(np.mean(rejected), rel=1e-12)
    assert metrics["margin"] == pytest.approx(beta * np.mean(h), rel=1e-12)
    assert metrics["num_pairs"] == pairs
    # d loss / d lp_t = -+ sigma(-beta h) * beta * w_t / P (chosen -, rejected +)
    for i in range(pairs):
        coef = beta / pairs / (1.0 + math.exp(beta * h[i]))
        np.testing.assert_allclose(lps[2 * i].grad.numpy(), -coef * ws[2 * i], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(lps[2 * i + 1].grad.numpy(), coef * ws[2 * i + 1], rtol=1e-12, atol=1e-15)


def test_float32_logprobs_get_float64_sums_and_float32_gradients() -> None:
    data = random_pairs(np.random.default_rng(1), 2)
    lps = [torch.full((d.loss_fn_inputs["weights"].shape[0],), -1.0, requires_grad=True) for d in data]
    loss, _ = dpo_loss_fn([(0.0, 0.0)] * 2)(data, lps)
    loss.backward()
    assert loss.dtype == torch.float64 and all(lp.grad is not None and lp.grad.dtype == torch.float32 for lp in lps)


def test_sums_from_arrays_tensors_and_tensordata_agree() -> None:
    w = [0.0, 0.0, 1.0, 1.0, 0.5]
    lp = [-1.0, -2.0, -3.0, -4.0, -2.0]
    expected = -8.0
    assert completion_logprob_sum(lp, w) == expected
    assert completion_logprob_sum(np.asarray(lp), TensorData(data=w, dtype="float32", shape=[5])) == expected
    assert float(completion_logprob_sum(torch.tensor(lp), TensorData(data=w, dtype="float32", shape=[5]))) == expected
    data = [datum([1, 2, 3, 4, 5, 6], [0.0] + w)] * 2
    assert pair_logprob_sums(data, [lp, TensorData(data=lp, dtype="float32", shape=[5])]) == [(expected, expected)]
    assert target_logprobs_from_prompt_logprobs([None, -1.0, -2.5]) == [-1.0, -2.5]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: dpo_loss_fn([(0.0, 0.0)], beta=0.0), "beta must be > 0"),
        (lambda d: dpo_loss_fn([]), "at least one"),
        (lambda d: dpo_loss_fn([(0.0, 0.0)] * 3)(d, [torch.zeros(d_.loss_fn_inputs["weights"].shape[0]) for d_ in d]), "built for 3 pairs got 4 datums"),
        (lambda d: pair_logprob_sums(d[:3], [[0.0]] * 3), "odd number"),
        (lambda d: completion_logprob_sum([0.0, 1.0], [1.0]), "2 logprobs but 1 weights"),
    ],
)
def test_misuse_is_one_clear_error(make, message) -> None:
    with pytest.raises(CookbookError, match=message):
        make(random_pairs(np.random.default_rng(2), 2))


# -- through the local engine ----------------------------------------------------------------


def _grads(client) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in client.trainable_parameters().items() if p.grad is not None}


def _batch() -> list[Datum]:
    from cookbook_cli.preference.data import PreferenceDataset
    from cookbook_cli.preference.types import Comparison, LabeledComparison
    from cookbook_cli.renderers import get_renderer

    def lc(q: str, good: str, bad: str, label: str) -> LabeledComparison:
        a, b = (good, bad) if label == "A" else (bad, good)
        return LabeledComparison(
            Comparison([{"role": "user", "content": q}], [{"role": "assistant", "content": a}], [{"role": "assistant", "content": b}]), label  # type: ignore[arg-type]
        )

    comparisons = [
        lc("Hi, I am Ada.", "Hello, Ada!", "What?", "A"),
        lc("2 plus 3?", "5.", "No idea, sorry.", "B"),
        lc("List a, b.", "1. a 2. b", "a and b", "A"),
        lc("Ask Ben for salt.", "Please pass the salt, Ben.", "Salt.", "B"),
    ]
    return PreferenceDataset(comparisons, get_renderer("llama3", "llama3"), batch_size=4).build_batch(0).datums


def test_local_engine_step0_with_its_own_forward_as_reference_is_exactly_ln2() -> None:
    """The default (float32) engine: `forward` returns the very logprobs the custom
    loss then sees, so h = 0 and the loss is -log sigmoid(0) = ln 2 exactly."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    data = _batch()
    with LocalServiceClient(device="cpu") as svc:
        policy = svc.create_lora_training_client("random:tiny:llama3", rank=4, seed=0)
        forward = policy.forward(data, "cross_entropy").result()
        reference = pair_logprob_sums(data, [o["logprobs"] for o in forward.loss_fn_outputs])
        out = policy.forward_backward_custom(data, dpo_loss_fn(reference, 0.1)).result()
    assert out.metrics["dpo_loss"] == math.log(2.0)
    assert out.metrics["accuracy"] == 0.0 and out.metrics["margin"] == 0.0 and out.metrics["num_pairs"] == 4
    assert out.metrics["chosen_reward"] == 0.0 and out.metrics["rejected_reward"] == 0.0


def test_local_engine_float64_gradient_is_the_formulas() -> None:
    """In float64 (where `forward` would round its output to float32 TensorData,
    the reference is recorded through the custom-loss path itself): h = 0, the loss
    is ln 2, and every completion token's logprob has gradient -+ sigma(0) beta w / P,
    so the parameter gradient equals cross_entropy's (loss -sum w' lp) with
    w' = +- 0.5 beta w / P, on an identical copy of the model."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    data = _batch()
    beta, pairs = 0.25, len(data) // 2  # 0.5 * beta / pairs = 1/32: exact as float32 weights
    recorded: list[tuple[float, float]] = []

    def record(batch: list[Datum], lps: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        recorded.extend(pair_logprob_sums(batch, [lp.detach() for lp in lps]))
        return sum(lp.sum() for lp in lps) * 0.0, {}

    with LocalServiceClient(device="cpu", dtype="float64") as svc:
        twin = svc.create_lora_training_client("random:tiny:llama3", rank=4, seed=0)
        twin.forward_backward_custom(data, record).result()  # gradient 0
        policy = svc.create_lora_training_client("random:tiny:llama3", rank=4, seed=0)
        out = policy.forward_backward_custom(data, dpo_loss_fn(recorded, beta)).result()
        assert out.metrics["dpo_loss"] == math.log(2.0)
        dpo_grads = _grads(policy)

        coef = 0.5 * beta / pairs
        scaled = []
        for i, d in enumerate(data):
            w = [x * (coef if i % 2 == 0 else -coef) for x in d.loss_fn_inputs["weights"].data]
            inputs = {**d.loss_fn_inputs, "weights": TensorData(data=w, dtype="float32", shape=[len(w)])}
            scaled.append(Datum(model_input=d.model_input, loss_fn_inputs=inputs))
        twin.forward_backward(scaled, "cross_entropy").result()
        ce_grads = _grads(twin)
    assert dpo_grads and dpo_grads.keys() == ce_grads.keys()
    assert any(float(g.abs().max()) > 0 for g in dpo_grads.values())
    for name, g in dpo_grads.items():
        torch.testing.assert_close(g, ce_grads[name], rtol=1e-10, atol=1e-13, msg=name)
