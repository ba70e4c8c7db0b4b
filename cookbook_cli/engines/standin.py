"""An engine stand-in with fixed latencies and no model, for measuring and
testing training loops (`benchmarks/pipelining.py`, `benchmarks/rl_async.py`,
the recipe tests).

Every training call is answered on one worker thread, in submission order,
like an engine's:

- `mode="remote"` (default): a call's result is ready `latency` seconds after
  it was submitted, as with a service across a network whose round trips
  overlap (Tinker): calls submitted back to back wait together;
- `mode="serial"`: each call occupies the worker for `latency` seconds, as an
  engine computing on one device; `train_latency=` is that for the
  forward-backward calls only (the other calls are free), as RL measures it.

`forward`/`forward_backward` return per-token logprobs: a datum's own
`logprobs` input when it has one (RL data: the sampler's), else
`-log(vocab) * decay**steps`, so the loss "falls" with each optim_step.
Sampling waits `sample_latency` seconds (concurrent calls overlap, as on a
remote sampler; `latency_jitter` makes them uneven) and returns uniformly random
tokens with their true logprob (-log V). Saved states restore the step count,
and each sampling client knows the version (steps) of the weights it samples.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cookbook_cli.engines.futures import LocalFuture
from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from tinker import types

    from cookbook_cli.tokenizers import Tokenizer

T = TypeVar("T")


class StandInService:
    engine = "standin"

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        latency: float = 0.05,
        mode: str = "remote",
        vocab_size: int | None = None,
        decay: float = 0.97,
        sample_latency: float = 0.05,
        train_latency: float | None = None,
        latency_jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        if mode not in ("remote", "serial"):
            raise CookbookError(f"stand-in mode must be remote or serial, got {mode!r}")
        self._costly: tuple[str, ...] | None = None  # None: every call takes `latency`
        if train_latency is not None:
            latency, mode = train_latency, "serial"
            self._costly = ("forward_backward", "forward_backward_custom")
        self.tokenizer = tokenizer
        self.latency = latency
        self.mode = mode
        self.vocab_size = vocab_size or (tokenizer.vocab_size if tokenizer is not None else 128256)
        self.decay = decay
        self.sample_latency = sample_latency
        self.latency_jitter = latency_jitter
        self.rng = random.Random(seed)
        self.states: dict[str, int] = {}
        self.calls: list[str] = []  # names of the training calls, in the order they ran
        self.sample_calls = 0
        self.last_client: StandInTrainingClient | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="standin")

    def submit(self, name: str, fn: Callable[[], T]) -> LocalFuture[T]:
        submitted = time.monotonic()

        def run() -> T:
            if self._costly is not None and name not in self._costly:
                pass
            elif self.mode == "remote":
                remaining = submitted + self.latency - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
            elif self.latency > 0:
                time.sleep(self.latency)
            self.calls.append(name)
            return fn()

        return LocalFuture(self._executor.submit(run))

    def _state(self, path: str) -> int:
        if path not in self.states:
            raise CookbookError(f"no stand-in state at {path!r}")
        return self.states[path]

    # -- clients ---------------------------------------------------------------------------------
    def create_lora_training_client(self, base_model: str, rank: int = 32, seed: int | None = None, **_: Any) -> StandInTrainingClient:
        self.last_client = StandInTrainingClient(self, base_model)
        return self.last_client

    async def create_lora_training_client_async(self, base_model: str, rank: int = 32, seed: int | None = None, **kw: Any) -> StandInTrainingClient:
        return self.create_lora_training_client(base_model, rank, seed, **kw)

    def create_training_client_from_state_with_optimizer(self, path: str) -> StandInTrainingClient:
        client = StandInTrainingClient(self, "standin", steps=self._state(path))
        self.last_client = client
        return client

    async def create_training_client_from_state_with_optimizer_async(self, path: str) -> StandInTrainingClient:
        return self.create_training_client_from_state_with_optimizer(path)

    create_training_client_from_state = create_training_client_from_state_with_optimizer
    create_training_client_from_state_async = create_training_client_from_state_with_optimizer_async

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None) -> StandInSamplingClient:
        return StandInSamplingClient(self, base_model or "standin", version=self.states.get(model_path or "", 0))

    async def create_sampling_client_async(self, model_path: str | None = None, base_model: str | None = None) -> StandInSamplingClient:
        return self.create_sampling_client(model_path, base_model)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class StandInSamplingClient:
    def __init__(self, service: StandInService, base_model: str, version: int) -> None:
        self.service = service
        self.base_model = base_model
        self.version = version

    def _latency(self) -> float:
        s = self.service
        return s.sample_latency * (1.0 + s.latency_jitter * s.rng.random() * 2.0 - s.latency_jitter)

    def _response(self, num_samples: int, params: types.SamplingParams) -> types.SampleResponse:
        import numpy as np
        from tinker.types import SampledSequence, SampleResponse

        s = self.service
        n = int(params.max_tokens or 16)
        lp = -math.log(s.vocab_size)
        seqs = [
            SampledSequence(
                stop_reason="length",
                sequence_id=f"standin-{self.version}-{s.sample_calls}-{i}",
                tokens_np=np.asarray([s.rng.randrange(s.vocab_size) for _ in range(n)], dtype=np.int32),
                logprobs_np=np.full(n, lp, dtype=np.float32),
            )
            for i in range(num_samples)
        ]
        s.sample_calls += 1
        return SampleResponse(sequences=seqs)

    def sample(self, prompt: types.ModelInput, num_samples: int, sampling_params: types.SamplingParams, include_prompt_logprobs: bool = False) -> LocalFuture[types.SampleResponse]:
        time.sleep(self._latency())
        return LocalFuture.completed(self._response(num_samples, sampling_params))

    async def sample_async(self, prompt: types.ModelInput, num_samples: int, sampling_params: types.SamplingParams, include_prompt_logprobs: bool = False) -> types.SampleResponse:
        await asyncio.sleep(self._latency())
        return self._response(num_samples, sampling_params)

    def _logprobs(self, prompt: types.ModelInput) -> list[float | None]:
        return [None] + [-math.log(self.service.vocab_size)] * (prompt.length - 1)

    def compute_logprobs(self, prompt: types.ModelInput) -> LocalFuture[list[float | None]]:
        return LocalFuture.completed(self._logprobs(prompt))

    async def compute_logprobs_async(self, prompt: types.ModelInput) -> list[float | None]:
        await asyncio.sleep(self.service.sample_latency)
        return self._logprobs(prompt)

    def get_tokenizer(self) -> Tokenizer | None:
        return self.service.tokenizer

    def get_base_model(self) -> str:
        return self.base_model


class StandInTrainingClient:
    _ids = itertools.count()

    def __init__(self, service: StandInService, base_model: str, steps: int = 0) -> None:
        self.service = service
        self.base_model = base_model
        self.steps = steps  # optimizer steps taken: the weights' version
        self.examples_seen: list[list[tuple[int, ...]]] = []  # per forward_backward: each datum's target tokens

    @property
    def version(self) -> int:
        return self.steps

    # -- model work ------------------------------------------------------------------------------
    def _outputs(self, data: Sequence[types.Datum], train: bool) -> types.ForwardBackwardOutput:
        import numpy as np
        from tinker.types import ForwardBackwardOutput, TensorData

        lp = -math.log(self.service.vocab_size) * self.service.decay**self.steps
        outputs = []
        total = 0.0
        for d in data:
            targets = d.loss_fn_inputs["target_tokens"].to_numpy()
            weights = d.loss_fn_inputs["weights"].to_numpy() if "weights" in d.loss_fn_inputs else np.zeros(targets.shape)
            if "logprobs" in d.loss_fn_inputs:
                outputs.append({"logprobs": d.loss_fn_inputs["logprobs"]})
            else:
                outputs.append({"logprobs": TensorData.from_numpy(np.full(targets.shape, lp, dtype=np.float32))})
                total += float(-(lp * weights).sum())
        if train:
            self.examples_seen.append([tuple(d.loss_fn_inputs["target_tokens"].to_numpy().tolist()) for d in data])
        return ForwardBackwardOutput(loss_fn_output_type="standin", loss_fn_outputs=outputs, metrics={"loss:sum": total})

    def forward(self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Any = None) -> LocalFuture[Any]:
        data = list(data)
        return self.service.submit("forward", lambda: self._outputs(data, False))

    async def forward_async(self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Any = None) -> LocalFuture[Any]:
        return self.forward(data, loss_fn, loss_fn_config)

    def forward_backward(self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Any = None) -> LocalFuture[Any]:
        data = list(data)
        return self.service.submit("forward_backward", lambda: self._outputs(data, True))

    async def forward_backward_async(self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Any = None) -> LocalFuture[Any]:
        return self.forward_backward(data, loss_fn, loss_fn_config)

    def forward_backward_custom(self, data: Sequence[types.Datum], loss_fn: Any) -> LocalFuture[Any]:
        data = list(data)
        return self.service.submit("forward_backward_custom", lambda: self._outputs(data, True))

    async def forward_backward_custom_async(self, data: Sequence[types.Datum], loss_fn: Any) -> LocalFuture[Any]:
        return self.forward_backward_custom(data, loss_fn)

    def optim_step(self, adam_params: types.AdamParams) -> LocalFuture[Any]:
        from tinker.types import OptimStepResponse

        def step() -> Any:
            self.steps += 1
            return OptimStepResponse(metrics={"learning_rate": adam_params.learning_rate})

        return self.service.submit("optim_step", step)

    async def optim_step_async(self, adam_params: types.AdamParams) -> LocalFuture[Any]:
        return self.optim_step(adam_params)

    # -- state -----------------------------------------------------------------------------------
    def _save(self, kind: str, name: str) -> Any:
        from tinker.types import SaveWeightsForSamplerResponse, SaveWeightsResponse

        path = f"standin://{kind}/{name}/{next(self._ids)}"
        self.service.states[path] = self.steps
        return SaveWeightsResponse(path=path) if kind == "state" else SaveWeightsForSamplerResponse(path=path)

    def save_state(self, name: str, overwrite: bool = False) -> LocalFuture[Any]:
        return self.service.submit("save_state", lambda: self._save("state", name))

    async def save_state_async(self, name: str, overwrite: bool = False) -> LocalFuture[Any]:
        return self.save_state(name)

    def save_weights_for_sampler(self, name: str, overwrite: bool = False) -> LocalFuture[Any]:
        return self.service.submit("save_weights_for_sampler", lambda: self._save("sampler", name))

    async def save_weights_for_sampler_async(self, name: str, overwrite: bool = False) -> LocalFuture[Any]:
        return self.save_weights_for_sampler(name)

    def load_state_with_optimizer(self, path: str) -> LocalFuture[Any]:
        from tinker.types import LoadWeightsResponse

        def load() -> Any:
            self.steps = self.service._state(path)
            return LoadWeightsResponse(path=path)

        return self.service.submit("load_state_with_optimizer", load)

    async def load_state_with_optimizer_async(self, path: str) -> LocalFuture[Any]:
        return self.load_state_with_optimizer(path)

    load_state = load_state_with_optimizer
    load_state_async = load_state_with_optimizer_async

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> StandInSamplingClient:
        return self.service.submit("sampler_snapshot", lambda: StandInSamplingClient(self.service, self.base_model, self.steps)).result()

    async def save_weights_and_get_sampling_client_async(self, name: str | None = None) -> StandInSamplingClient:
        return await self.service.submit("sampler_snapshot", lambda: StandInSamplingClient(self.service, self.base_model, self.steps))

    def get_tokenizer(self) -> Tokenizer | None:
        return self.service.tokenizer

    def get_base_model(self) -> str:
        return self.base_model
