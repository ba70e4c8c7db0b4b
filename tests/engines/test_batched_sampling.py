"""Concurrent sample requests are decoded in one batch, and each gets what it
gets alone: the same tokens, stop reasons and logprobs for the same seed, under
its own stop rules and sampling parameters. Top-K logprobs equal a softmax of
the model's logits.

Tolerance: a request's prompt runs alone either way, so its first token and
prompt logprobs are bitwise its own; later steps are computed in a batch, with
other matrix shapes and masked padding, which moves logits by float rounding
only: ~1e-15 in float64 (checked to 1e-12), ~1e-6 in float32 (checked to 1e-5).
Tokens are drawn per request from its own rows and generator, so they are equal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

VOCAB = 512
TOL = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(scope="module", params=["float32", "float64"])
def env(request: pytest.FixtureRequest, small_vocab_model: str) -> Iterator[SimpleNamespace]:
    """A sampling client on its own service, and the tolerance of its dtype."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    with LocalServiceClient(device="cpu", dtype=request.param) as svc:
        sc = svc.create_sampling_client(base_model=small_vocab_model)
        yield SimpleNamespace(sc=sc, svc=svc, tol=TOL[request.param], dtype=request.param)


def requests(seed: int = 0) -> list[tuple[Any, int, Any]]:
    """RL-like requests: prompts of different lengths, each with its own seed,
    sample count, length limit, sampling parameters and stop rule."""
    from tinker import types

    rng = np.random.default_rng(seed)
    stops: list[Any] = [[], [7, 19, 101], ["w3"], [], ["w12", "w4"], [250], [], ["w9"]]
    out = []
    for g, stop in enumerate(stops):
        prompt = types.ModelInput.from_ints(rng.integers(0, VOCAB, size=int(rng.integers(2, 30))).tolist())
        params = types.SamplingParams(
            max_tokens=int(rng.integers(4, 24)),
            temperature=[1.0, 0.7, 1.3, 0.0][g % 4],
            top_k=20 if g == 2 else -1,
            top_p=0.8 if g == 5 else 1.0,
            seed=1000 + g,
            stop=stop,
        )
        out.append((prompt, 1 + g % 4, params))
    return out


def together(env: SimpleNamespace, reqs: list[tuple[Any, int, Any]]) -> list[Any]:
    """All requests queued while the worker is held, so they meet in one batch."""
    release = threading.Event()
    env.svc.submit(release.wait)
    futures = [env.sc.sample(*r) for r in reqs]
    release.set()
    return [f.result() for f in futures]


def assert_same(a: Any, b: Any, tol: float) -> None:
    assert len(a.sequences) == len(b.sequences)
    for s, t in zip(a.sequences, b.sequences, strict=True):
        assert s.tokens == t.tokens and s.stop_reason == t.stop_reason
        np.testing.assert_allclose(s.logprobs, t.logprobs, rtol=0, atol=tol)


def test_batched_requests_equal_each_alone(env: SimpleNamespace) -> None:
    reqs = requests()
    alone = [env.sc.sample(*r).result() for r in reqs]
    batched = together(env, reqs)
    assert env.sc.batches[-1] == (len(reqs), sum(n for _, n, _ in reqs))  # one batch of every row
    for a, b in zip(alone, batched, strict=True):
        assert_same(a, b, env.tol)
    reasons = {s.stop_reason for r in alone for s in r.sequences}
    assert reasons == {"stop", "length"}  # the stop rules were exercised


def test_each_request_keeps_its_own_stop_rules(env: SimpleNamespace) -> None:
    tok = env.sc.get_tokenizer()
    for (prompt, n, params), resp in zip(requests(), together(env, requests()), strict=True):
        for seq in resp.sequences:
            stop = params.stop
            assert len(seq.tokens) <= params.max_tokens
            if seq.stop_reason == "length":
                assert len(seq.tokens) == params.max_tokens
            hit_at = [
                i
                for i in range(len(seq.tokens))
                if (stop and isinstance(stop[0], int) and seq.tokens[i] in stop)
                or (stop and isinstance(stop[0], str) and any(s in tok.decode(seq.tokens[: i + 1]) for s in stop))
            ]
            # It stops at the first token completing a stop, and only then.
            assert (seq.stop_reason == "stop") == bool(hit_at)
            if hit_at:
                assert hit_at[0] == len(seq.tokens) - 1


def test_a_late_request_joins_the_running_batch(env: SimpleNamespace) -> None:
    from tinker import types

    long_params = types.SamplingParams(max_tokens=60, seed=1, stop=[])
    first = (types.ModelInput.from_ints([5, 6, 7]), 2, long_params)
    late = (types.ModelInput.from_ints(list(range(40, 60))), 3, types.SamplingParams(max_tokens=8, seed=2, stop=[]))
    late_alone = env.sc.sample(*late).result()
    count = len(env.sc.batches)
    running = env.sc.sample(*first)
    deadline = time.monotonic() + 30
    while len(env.sc.batches) == count and time.monotonic() < deadline:
        time.sleep(0.001)  # until the first request is decoding
    late_batched = env.sc.sample(*late).result()
    assert not running.done()  # it joined mid-flight, and finished first
    assert env.sc.batches[-1] == (2, 2 + 3)
    assert_same(late_alone, late_batched, env.tol)
    running.result()


def test_waiting_training_work_goes_before_late_requests(h: Any, env: SimpleNamespace, small_vocab_model: str) -> None:
    """A request that arrives mid-batch while a training step waits does not
    join: the step runs when the batch ends, then the request."""
    from tinker import types

    tc = env.svc.create_lora_training_client(small_vocab_model, rank=2)
    order: list[str] = []
    running = env.sc.sample(types.ModelInput.from_ints([5, 6, 7]), 2, types.SamplingParams(max_tokens=60, seed=1, stop=[]))
    count = len(env.sc.batches)
    deadline = time.monotonic() + 30
    while len(env.sc.batches) == count and time.monotonic() < deadline:
        time.sleep(0.001)
    step = tc.forward([h.datum([1, 2, 3, 4])], "cross_entropy")
    step.future().add_done_callback(lambda _: order.append("train"))
    late = env.sc.sample(types.ModelInput.from_ints([9, 9]), 1, types.SamplingParams(max_tokens=3, seed=3, stop=[]))
    late.future().add_done_callback(lambda _: order.append("late"))
    running.result(), late.result(), step.result()
    assert order == ["train", "late"] and env.sc.batches[-1] == (1, 1)


def test_prompt_and_sample_topk_logprobs_are_the_softmax_of_the_logits(env: SimpleNamespace) -> None:
    from tinker import types

    k = 5
    prompt = types.ModelInput.from_ints([3, 141, 59, 26, 5, 35])
    params = types.SamplingParams(max_tokens=6, seed=4, stop=[])
    resp = env.sc.sample(prompt, 2, params, include_prompt_logprobs=True, topk_prompt_logprobs=k, topk_sample_logprobs=k).result()
    fdt = torch.float64 if env.dtype == "float64" else torch.float32

    def direct(tokens: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return env.sc.model(input_ids=torch.tensor([tokens])).logits[0].to(fdt).softmax(-1).log()

    want = direct(prompt.to_ints())
    tol = max(env.tol, 2e-6)  # logprobs are returned in float32, as on Tinker
    top = resp.topk_prompt_logprobs
    assert len(top) == prompt.length and top[0] is None  # no context before the first token
    for i in range(1, prompt.length):
        values, ids = want[i - 1].topk(k)
        assert [t for t, _ in top[i]] == ids.tolist()
        np.testing.assert_allclose([lp for _, lp in top[i]], values.numpy(), rtol=0, atol=tol)
        assert resp.prompt_logprobs[i] == pytest.approx(float(want[i - 1, prompt.to_ints()[i]]), abs=tol)
    for seq in resp.sequences:
        full = direct(prompt.to_ints() + seq.tokens)
        assert len(seq.topk_logprobs) == len(seq.tokens)
        for j, row in enumerate(seq.topk_logprobs):
            values, ids = full[prompt.length - 1 + j].topk(k)
            assert [t for t, _ in row] == ids.tolist()
            np.testing.assert_allclose([lp for _, lp in row], values.numpy(), rtol=0, atol=10 * tol)  # incremental vs full pass
    # Without asking, none of it is computed.
    plain = env.sc.sample(prompt, 1, params).result()
    assert plain.topk_prompt_logprobs is None and plain.prompt_logprobs is None and plain.sequences[0].topk_logprobs is None


def test_topk_larger_than_the_vocabulary_is_the_whole_vocabulary(env: SimpleNamespace) -> None:
    from tinker import types

    resp = env.sc.sample(types.ModelInput.from_ints([1, 2]), 1, types.SamplingParams(max_tokens=1), topk_prompt_logprobs=10_000).result()
    assert len(resp.topk_prompt_logprobs[1]) == VOCAB
    assert np.exp([lp for _, lp in resp.topk_prompt_logprobs[1]]).sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("k", [-1, 1.5, True])
def test_bad_topk_is_one_line(env: SimpleNamespace, k: Any) -> None:
    from tinker import types

    from cookbook_cli.errors import CookbookError

    with pytest.raises(CookbookError, match="topk_prompt_logprobs must be a whole number >= 0") as info:
        env.sc.sample(types.ModelInput.from_ints([1, 2]), 1, types.SamplingParams(max_tokens=1), topk_prompt_logprobs=k)
    assert "\n" not in str(info.value)
