"""Fixtures for the after-training commands: a fake sampling client that
answers with scripted tokens, and tiny trained runs on the local engine."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from cookbook_cli.run.options import RunOptions


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


def _train_tiny(log_dir, lora_rank: int, steps: int = 2):  # type: ignore[no-untyped-def]
    """A tiny sl run on the local engine: a random model over the 512-token ChatML
    tokenizer, the hf_template renderer, a checkpoint after every step."""
    from cookbook_cli.data.builders import ConversationsBuilder
    from cookbook_cli.recipes.sl import SLConfig, train
    from cookbook_cli.testing import tiny_tokenizer_path

    cfg = SLConfig(
        log_dir=str(log_dir),
        model=f"random:tiny:{tiny_tokenizer_path()}",
        renderer="hf_template",
        dataset=ConversationsBuilder(test_size=0),
        batch_size=4,
        max_steps=steps,
        lora_rank=lora_rank,
        eval_every=0,
        save_every=1,
        learning_rate=5e-2,
        engine_options={"device": "cpu", "dtype": "float32"},
    )
    train(cfg, RunOptions(progress=False, on_log=lambda m: None))
    return log_dir


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory):
    """A finished LoRA run: step-000001 (training state only) and final-000002 (with sampler weights)."""
    pytest.importorskip("peft")
    return _train_tiny(tmp_path_factory.mktemp("runs") / "lora", lora_rank=4)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """A finished full fine-tuning run (rank 0)."""
    pytest.importorskip("transformers")
    return _train_tiny(tmp_path_factory.mktemp("runs") / "full", lora_rank=0)


def write_prompts(path, rows):  # type: ignore[no-untyped-def]
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def prompts(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": f"Question number {i}?"}]} for i in range(3)
    ] + [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]}]
    return write_prompts(tmp_path / "prompts.jsonl", rows)
