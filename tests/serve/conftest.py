"""A live `cookbook serve` on 127.0.0.1 for the tests: a tiny random model on
the local engine (the 512-token ChatML tokenizer, the hf_template renderer),
served from a background thread on a free port, with an API key."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

API_KEY = "test-key"
NAME = "tiny"


@dataclass
class Live:
    url: str  # the server root; the API is url + "/v1"
    model: Any  # the ServedModel behind it

    def client(self, **kw: Any) -> Any:
        import openai

        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=kw.pop("api_key", API_KEY), **kw)


def tiny_source() -> Any:
    from cookbook_cli.sources import resolve_source
    from cookbook_cli.testing import tiny_tokenizer_path

    return resolve_source(model=f"random:tiny:{tiny_tokenizer_path()}", renderer="hf_template", engine_options={"device": "cpu", "dtype": "float32"})


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    pytest.importorskip("uvicorn")
    from cookbook_cli.serving.server import ServeOptions, open_served_model, running_server

    options = ServeOptions(port=0, api_key=API_KEY, name=NAME)
    with open_served_model(tiny_source(), options) as model, running_server(model, options) as url:
        yield Live(url, model)


class GatedClient:
    """A stand-in SamplingClient: each sample waits until `gate` opens (set
    `entered` first), then answers `respond(prompt_tokens)` -> token ids."""

    def __init__(self, tokenizer: Any, respond: Callable[[list[int]], list[int]]) -> None:
        self.tokenizer = tokenizer
        self.respond = respond
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.prompts: list[list[int]] = []

    async def sample_async(self, prompt: Any, num_samples: int, sampling_params: Any, **kw: Any) -> Any:
        import numpy as np
        from tinker import types

        self.prompts.append(prompt.to_ints())
        self.entered.set()
        await asyncio.to_thread(self.gate.wait)
        out = self.respond(prompt.to_ints())
        seq = types.SampledSequence(stop_reason="stop", sequence_id="standin", tokens_np=np.asarray(out, dtype=np.int32), logprobs_np=np.full(len(out), -0.5, dtype=np.float32))
        return types.SampleResponse(sequences=[seq] * num_samples)


@pytest.fixture
def serve_standin() -> Callable[..., Any]:
    """`serve_standin(renderer, client, **options)`: a context manager serving a stand-in sampler; yields a Live."""
    from contextlib import contextmanager

    from cookbook_cli.serving.admission import Admission
    from cookbook_cli.serving.model import ServedModel
    from cookbook_cli.serving.server import ServeOptions, running_server

    @contextmanager
    def serve(renderer: Any, client: Any, max_waiting: int = 8, timeout: float = 60.0) -> Iterator[Live]:
        model = ServedModel("standin", client, renderer, Admission(max_waiting, timeout))
        with running_server(model, ServeOptions(port=0, api_key=API_KEY)) as url:
            yield Live(url, model)

    return serve
