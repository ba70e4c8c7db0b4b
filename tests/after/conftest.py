"""Fixtures for the after-training commands: a fake sampling client that
answers with scripted tokens, and tiny trained runs on the local engine."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest


class ScriptedSamplingClient:
    """A SamplingClient whose every sample is `respond(prompt_tokens, index)` -> (tokens, stop_reason)."""

    def __init__(self, respond: Callable[[list[int], int], tuple[list[int], str]], tokenizer=None) -> None:  # type: ignore[no-untyped-def]
        self.respond = respond
        self.tokenizer = tokenizer
        self.calls: list[tuple[list[int], int, object]] = []

    async def sample_async(self, prompt, num_samples, sampling_params, include_prompt_logprobs=False):  # type: ignore[no-untyped-def]
        import numpy as np
        from tinker import types

        tokens = prompt.to_ints()
        self.calls.append((tokens, num_samples, sampling_params))
        seqs = []
        for i in range(num_samples):
            out, reason = self.respond(tokens, i)
            seqs.append(types.SampledSequence(stop_reason=reason, sequence_id=f"scripted-{i}", tokens_np=np.asarray(out, dtype=np.int32), logprobs_np=np.full(len(out), -0.25, dtype=np.float32)))
        return types.SampleResponse(sequences=seqs)

    def get_tokenizer(self):  # type: ignore[no-untyped-def]
        return self.tokenizer


@pytest.fixture
def scripted_client():
    return ScriptedSamplingClient


@pytest.fixture(scope="session")
def toy_renderer():
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    return get_renderer("role_colon", get_tokenizer(toy_tokenizer_path()))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from cookbook_cli.testing import tiny_tokenizer_path

    return str(tiny_tokenizer_path())


@pytest.fixture(scope="session")
def h():
    return SimpleNamespace()
