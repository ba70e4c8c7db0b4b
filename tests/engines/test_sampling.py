"""Sampling: logprobs agree with compute_logprobs, seeds reproduce, every
SamplingParams field is honoured, and snapshots do not move with training.

Tolerance: sampled logprobs come from the KV-cached incremental pass and
compute_logprobs from one full pass; they agree to 1e-4 (absolute) in float32.
In float64 the computations agree to ~1e-12, and what is left is the float32
in which SampleResponse stores logprobs (as on Tinker): 2e-6 at |logprob| ~ 12.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

TOL = {"float32": 1e-4, "float64": 2e-6}


@pytest.fixture(scope="module")
def sampler32(h: Any, service32: Any) -> Any:
    return service32.create_sampling_client(base_model=h.MODEL)


def prompt_of(sc: Any, text: str = "Once upon a time") -> Any:
    from tinker import types

    return types.ModelInput.from_ints(sc.get_tokenizer().encode(text))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_logprobs_equal_compute_logprobs(h: Any, service32: Any, service64: Any, dtype: str) -> None:
    from tinker import types

    sc = (service32 if dtype == "float32" else service64).create_sampling_client(base_model=h.MODEL)
    prompt = prompt_of(sc)
    resp = sc.sample(prompt, 4, types.SamplingParams(max_tokens=12, temperature=1.0, seed=3, stop=[])).result()
    assert len(resp.sequences) == 4
    for seq in resp.sequences:
        assert len(seq.tokens) == 12 and seq.stop_reason == "length"
        full = sc.compute_logprobs(types.ModelInput.from_ints(prompt.to_ints() + seq.tokens)).result()
        np.testing.assert_allclose(seq.logprobs, full[prompt.length :], rtol=0, atol=TOL[dtype])


def test_seeded_sampling_is_reproducible(sampler32: Any) -> None:
    from tinker import types

    params = types.SamplingParams(max_tokens=10, temperature=1.0, seed=1234, stop=[])
    a = sampler32.sample(prompt_of(sampler32), 3, params).result()
    b = sampler32.sample(prompt_of(sampler32), 3, params).result()
    c = sampler32.sample(prompt_of(sampler32), 3, params.model_copy(update={"seed": 4321})).result()
    assert [s.tokens for s in a.sequences] == [s.tokens for s in b.sequences]
    assert [s.logprobs for s in a.sequences] == [s.logprobs for s in b.sequences]
    assert [s.tokens for s in a.sequences] != [s.tokens for s in c.sequences]
    assert len({tuple(s.tokens) for s in a.sequences}) > 1  # samples within one call differ


def test_greedy_equals_top_k_one(sampler32: Any) -> None:
    import torch
    from tinker import types

    greedy = sampler32.sample(prompt_of(sampler32), 1, types.SamplingParams(max_tokens=8, temperature=0.0, stop=[])).result()
    top1 = sampler32.sample(prompt_of(sampler32), 2, types.SamplingParams(max_tokens=8, top_k=1, seed=5, stop=[])).result()
    assert all(s.tokens == greedy.sequences[0].tokens for s in top1.sequences)
    ids = prompt_of(sampler32).to_ints()
    for tok in greedy.sequences[0].tokens:  # each token is the argmax given the ones before
        with torch.no_grad():
            assert tok == int(sampler32.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        ids.append(tok)


def test_top_p_and_top_k_restrict_the_support(h: Any, service32: Any) -> None:
    """With top_k=3 every sampled token is among the 3 most likely at its step."""
    import torch
    from tinker import types

    sc = service32.create_sampling_client(base_model=h.MODEL)
    prompt = prompt_of(sc)
    resp = sc.sample(prompt, 4, types.SamplingParams(max_tokens=6, top_k=3, temperature=2.0, seed=0, stop=[])).result()
    tiny_p = sc.sample(prompt, 3, types.SamplingParams(max_tokens=6, top_p=1e-6, seed=1, stop=[])).result()
    greedy = sc.sample(prompt, 1, types.SamplingParams(max_tokens=6, temperature=0.0, stop=[])).result()
    assert all(s.tokens == greedy.sequences[0].tokens for s in tiny_p.sequences)  # top_p -> 0 keeps the argmax only
    for seq in resp.sequences:
        ids = prompt.to_ints()
        for tok in seq.tokens:
            with torch.no_grad():
                logits = sc.model(input_ids=torch.tensor([ids])).logits[0, -1]
            assert tok in torch.topk(logits, 3).indices.tolist()
            ids.append(tok)


def test_stop_token_ids_and_strings(sampler32: Any) -> None:
    from tinker import types

    tok = sampler32.get_tokenizer()
    base = sampler32.sample(prompt_of(sampler32), 1, types.SamplingParams(max_tokens=12, seed=7, stop=[])).result().sequences[0]
    stop_id = base.tokens[4]
    first = base.tokens.index(stop_id)
    by_id = sampler32.sample(prompt_of(sampler32), 1, types.SamplingParams(max_tokens=12, seed=7, stop=[stop_id])).result()
    seq = by_id.sequences[0]
    assert seq.stop_reason == "stop" and seq.tokens == base.tokens[: first + 1]  # the stop token is included

    text = tok.decode(base.tokens)
    needle = text[len(tok.decode(base.tokens[:6])) :][:3] or text[-2:]
    by_str = sampler32.sample(prompt_of(sampler32), 1, types.SamplingParams(max_tokens=12, seed=7, stop=[needle])).result()
    seq = by_str.sequences[0]
    assert seq.stop_reason == "stop" and needle in tok.decode(seq.tokens)
    assert needle not in tok.decode(seq.tokens[:-1])  # stopped at the first token completing it

    length = sampler32.sample(prompt_of(sampler32), 2, types.SamplingParams(max_tokens=5, seed=7, stop=[])).result()
    assert all(s.stop_reason == "length" and len(s.tokens) == 5 for s in length.sequences)


def test_default_stop_is_end_of_sequence(h: Any, service32: Any) -> None:
    """stop=None stops at the tokenizer's EOS; here a model trained to say it soon."""
    from tinker import types

    tc = service32.create_lora_training_client(h.MODEL, rank=0)
    tok = tc.get_tokenizer()
    eos = tok.eos_token_id
    ids = tok.encode("Hi there") + [eos]
    data = [h.datum(ids, weights=[1.0] * (len(ids) - 1))]
    for _ in range(25):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=2e-2)).result()
    sc = tc.save_weights_and_get_sampling_client()
    resp = sc.sample(types.ModelInput.from_ints(ids[:2]), 2, types.SamplingParams(max_tokens=20, temperature=0.0)).result()
    for seq in resp.sequences:
        assert seq.stop_reason == "stop" and seq.tokens[-1] == eos and len(seq.tokens) < 20


def test_prompt_logprobs(sampler32: Any) -> None:
    from tinker import types

    prompt = prompt_of(sampler32)
    resp = sampler32.sample(prompt, 1, types.SamplingParams(max_tokens=1, seed=0), include_prompt_logprobs=True).result()
    want = sampler32.compute_logprobs(prompt).result()
    assert resp.prompt_logprobs[0] is None and want[0] is None
    np.testing.assert_allclose(resp.prompt_logprobs[1:], want[1:], atol=1e-5)


def test_snapshot_does_not_move_with_training(h: Any, service32: Any) -> None:
    from tinker import types

    tc = service32.create_lora_training_client(h.MODEL, rank=4)
    sc = tc.save_weights_and_get_sampling_client()
    prompt = prompt_of(sc)
    before = sc.compute_logprobs(prompt).result()
    data = [h.datum(prompt.to_ints(), weights=[1.0] * (prompt.length - 1))]
    for _ in range(3):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    assert sc.compute_logprobs(prompt).result() == before
    after = tc.save_weights_and_get_sampling_client().compute_logprobs(prompt).result()
    assert sum(after[1:]) > sum(before[1:])  # training on the prompt made it likelier


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda sc, t: sc.sample(t.ModelInput.from_ints([]), 1, t.SamplingParams(max_tokens=2)), "prompt is empty"),
        (lambda sc, t: sc.sample(t.ModelInput.from_ints([10**7]), 1, t.SamplingParams(max_tokens=2)), "outside the vocabulary"),
        (lambda sc, t: sc.sample(t.ModelInput.from_ints([1]), 0, t.SamplingParams(max_tokens=2)).result(), "num_samples"),
        (lambda sc, t: sc.sample(t.ModelInput.from_ints([1]), 1, t.SamplingParams(max_tokens=0)).result(), "max_tokens"),
    ],
)
def test_bad_sampling_input_is_one_line(sampler32: Any, call: Any, message: str) -> None:
    from tinker import types

    from cookbook_cli.errors import CookbookError

    with pytest.raises(CookbookError, match=message) as info:
        call(sampler32, types)
    assert "\n" not in str(info.value)
