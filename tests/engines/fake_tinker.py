"""A stand-in for the Tinker service behind the tinker SDK's own client shapes.

It answers the way tinker 0.38 does: operations return `AwaitableConcurrentFuture`s
(completed on a worker thread, in submission order) of real `tinker.types`
responses; client factories return `BackcompatTrainingClientFuture` /
`BackcompatSamplingClientFuture` of the clients; the `_async` twins and
`load_state*` are marked deprecated exactly where the SDK marks them. The
signatures are checked against the installed SDK's (test_tinker_adapter.py),
so what the adapter passes here it can pass to the real thing.

Behind it is a one-parameter "model" with Adam, so results mean something:
the logprob of target token `t` under weight `w` is `-(w - t / 100) ** 2 - 1`;
`cross_entropy` is `-sum(weights * logprob)`; a custom loss gets those
logprobs as tensors that require grad; `optim_step` is torch's Adam on `w`;
`save_state` keeps `w` and the Adam state under a `tinker://` path, which the
`create_training_client_from_state*` factories restore (with or without the
optimizer); a sampling client over weights `w` samples the tokens `round(100 w)`,
`+1`, `+2`, ... with their logprobs.
"""

from __future__ import annotations

import concurrent.futures
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tinker import types
from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture
from tinker.lib.public_interfaces.backcompat_sampling_client_future import BackcompatSamplingClientFuture
from tinker.lib.public_interfaces.backcompat_training_client_future import BackcompatTrainingClientFuture
from typing_extensions import deprecated

LATENCY = 0.01  # seconds each request takes
DEPRECATED = deprecated("deprecated in the tinker SDK", category=FutureWarning)


def logprob(w: torch.Tensor | float, token: int) -> Any:
    return -((w - token / 100) ** 2) - 1


@dataclass
class Server:
    """What the service remembers: saved states, sampler weights, and every call."""

    states: dict[str, tuple[float, dict[str, Any], str, int]] = field(default_factory=dict)  # w, Adam, base model, rank
    samplers: dict[str, tuple[float, str]] = field(default_factory=dict)  # w, base model
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    # A service of the older API (SkyRL's Tinker server 0.4): no one-request
    # restore (its load request lacks a model_id: HTTP 422); loading into a live client works.
    older_api: bool = False
    worker: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fake-tinker")
    )

    def submit(self, fn: Callable[..., Any], *args: Any) -> AwaitableConcurrentFuture[Any]:
        def later() -> Any:
            time.sleep(LATENCY)  # so a caller that blocks on the future is caught blocking
            return fn(*args)

        return AwaitableConcurrentFuture(self.worker.submit(later))

    def log(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))


class FakeSamplingClient:
    def __init__(self, server: Server, w: float, base_model: str) -> None:
        self.server, self.w, self.base_model = server, w, base_model

    def _sample(self, prompt: types.ModelInput, num_samples: int, params: types.SamplingParams, prompt_lps: bool) -> types.SampleResponse:
        first = round(100 * self.w)
        tokens = [first + k for k in range(params.max_tokens or 1)]
        sequences = [
            types.SampledSequence(
                stop_reason="length", sequence_id=f"fake-{i}", _tokens_list=tokens, _logprobs_list=[float(logprob(self.w, t)) for t in tokens]
            )
            for i in range(num_samples)
        ]
        return types.SampleResponse(sequences=sequences, _prompt_logprobs_list=self._prompt_logprobs(prompt) if prompt_lps else None)

    def _prompt_logprobs(self, prompt: types.ModelInput) -> list[float | None]:
        ids = prompt.to_ints()
        return [None] + [float(logprob(self.w, t)) for t in ids[1:]]

    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
    ) -> AwaitableConcurrentFuture[types.SampleResponse]:
        self.server.log("sample", num_samples, include_prompt_logprobs)
        return self.server.submit(self._sample, prompt, num_samples, sampling_params, include_prompt_logprobs)

    @DEPRECATED
    async def sample_async(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
    ) -> types.SampleResponse:
        return await self.sample(prompt, num_samples, sampling_params, include_prompt_logprobs)

    def compute_logprobs(self, prompt: types.ModelInput) -> AwaitableConcurrentFuture[list[float | None]]:
        self.server.log("compute_logprobs")
        return self.server.submit(self._prompt_logprobs, prompt)

    @DEPRECATED
    async def compute_logprobs_async(self, prompt: types.ModelInput) -> list[float | None]:
        return await self.compute_logprobs(prompt)

    def get_base_model(self) -> str:
        return self.base_model


class FakeTrainingClient:
    def __init__(self, server: Server, base_model: str, rank: int, w: float = 0.5, optimizer: dict[str, Any] | None = None) -> None:
        self.server, self.base_model, self.rank = server, base_model, rank
        self.w = torch.tensor(float(w), dtype=torch.float64, requires_grad=True)
        self.adam = torch.optim.Adam([self.w], lr=1e-3)
        if optimizer is not None:
            self.adam.load_state_dict(copy.deepcopy(optimizer))  # the saved state must not move with this client

    # -- losses -------------------------------------------------------------------------
    def _logprobs(self, data: list[types.Datum]) -> list[torch.Tensor]:
        return [torch.stack([logprob(self.w, int(t)) for t in d.loss_fn_inputs["target_tokens"].data]) for d in data]

    def _output(self, lps: list[torch.Tensor], loss: torch.Tensor, metrics: dict[str, float]) -> types.ForwardBackwardOutput:
        outputs = [{"logprobs": types.TensorData(data=lp.detach().tolist(), dtype="float32", shape=[len(lp)])} for lp in lps]
        return types.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={"loss:sum": float(loss), **metrics})

    def _builtin(self, data: list[types.Datum], loss_fn: str, backward: bool) -> types.ForwardBackwardOutput:
        if loss_fn != "cross_entropy":
            raise ValueError(f"the fake service knows only cross_entropy, not {loss_fn!r}")
        lps = self._logprobs(data)
        loss = -sum((lp * torch.tensor(d.loss_fn_inputs["weights"].data, dtype=torch.float64)).sum() for lp, d in zip(lps, data))
        if backward:
            loss.backward()
        return self._output(lps, loss.detach(), {})

    def forward(self, data: list[types.Datum], loss_fn: str, loss_fn_config: Any = None) -> AwaitableConcurrentFuture[types.ForwardBackwardOutput]:
        self.server.log("forward", loss_fn, loss_fn_config)
        return self.server.submit(self._builtin, list(data), loss_fn, False)

    def forward_backward(self, data: list[types.Datum], loss_fn: str, loss_fn_config: Any = None) -> AwaitableConcurrentFuture[types.ForwardBackwardOutput]:
        self.server.log("forward_backward", loss_fn, loss_fn_config)
        return self.server.submit(self._builtin, list(data), loss_fn, True)

    def _custom(self, data: list[types.Datum], fn: Callable[..., Any]) -> types.ForwardBackwardOutput:
        lps = self._logprobs(data)
        loss, metrics = fn(data, lps)
        loss.backward()
        return self._output(lps, loss.detach(), metrics)

    def forward_backward_custom(self, data: list[types.Datum], loss_fn: Callable[..., Any]) -> AwaitableConcurrentFuture[types.ForwardBackwardOutput]:
        self.server.log("forward_backward_custom")
        return self.server.submit(self._custom, list(data), loss_fn)

    def _step(self, params: types.AdamParams) -> types.OptimStepResponse:
        for group in self.adam.param_groups:
            group.update(lr=params.learning_rate, betas=(params.beta1, params.beta2), eps=params.eps)
        self.adam.step()
        self.adam.zero_grad()
        return types.OptimStepResponse(metrics={"w": float(self.w.detach())})

    def optim_step(self, optim_params: Any = None, *, adam_params: types.AdamParams | None = None) -> AwaitableConcurrentFuture[types.OptimStepResponse]:
        params = optim_params if optim_params is not None else adam_params
        if not isinstance(params, types.AdamParams):
            raise TypeError("Expected AdamParams or OptimParamsBase")
        self.server.log("optim_step", params.learning_rate)
        return self.server.submit(self._step, params)

    # -- state ---------------------------------------------------------------------------
    def _path(self, kind: str, name: str) -> str:
        return f"tinker://fake-run/{kind}/{name}"

    def _save(self, name: str, overwrite: bool) -> types.SaveWeightsResponse:
        path = self._path("weights", name)
        if path in self.server.states and not overwrite:
            raise ValueError(f"checkpoint {name!r} exists")
        self.server.states[path] = (float(self.w.detach()), copy.deepcopy(self.adam.state_dict()), self.base_model, self.rank)
        return types.SaveWeightsResponse(path=path)

    def save_state(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False) -> AwaitableConcurrentFuture[types.SaveWeightsResponse]:
        self.server.log("save_state", name, overwrite)
        return self.server.submit(self._save, name, overwrite)

    def _save_for_sampler(self, name: str) -> types.SaveWeightsForSamplerResponse:
        path = self._path("sampler_weights", name)
        self.server.samplers[path] = (float(self.w.detach()), self.base_model)
        return types.SaveWeightsForSamplerResponse(path=path)

    def save_weights_for_sampler(self, name: str, ttl_seconds: int | None = None) -> AwaitableConcurrentFuture[types.SaveWeightsForSamplerResponse]:
        self.server.log("save_weights_for_sampler", name)
        return self.server.submit(self._save_for_sampler, name)

    def _load(self, path: str, with_optimizer: bool) -> types.LoadWeightsResponse:
        w, optimizer, _, _ = self.server.states[path]
        with torch.no_grad():
            self.w.fill_(w)
        self.adam = torch.optim.Adam([self.w], lr=1e-3)
        if with_optimizer:
            self.adam.load_state_dict(copy.deepcopy(optimizer))
        return types.LoadWeightsResponse(path=path)

    def _older_load(self, path: str, with_optimizer: bool) -> AwaitableConcurrentFuture[types.LoadWeightsResponse]:
        if not self.server.older_api:
            raise AssertionError("the SDK deprecates load_state*; create a client from the state instead")
        self.server.log("load_state" + ("_with_optimizer" if with_optimizer else ""), path)
        return self.server.submit(self._load, path, with_optimizer)

    @DEPRECATED
    def load_state(self, path: str) -> AwaitableConcurrentFuture[types.LoadWeightsResponse]:
        return self._older_load(path, False)

    @DEPRECATED
    def load_state_with_optimizer(self, path: str) -> AwaitableConcurrentFuture[types.LoadWeightsResponse]:
        return self._older_load(path, True)

    def _sampling_client(self, w: float) -> FakeSamplingClient:
        return FakeSamplingClient(self.server, w, self.base_model)

    def save_weights_and_get_sampling_client(self) -> BackcompatSamplingClientFuture:
        self.server.log("save_weights_and_get_sampling_client")
        return BackcompatSamplingClientFuture(self.server.submit(lambda: self._sampling_client(float(self.w.detach()))))

    @DEPRECATED
    async def save_weights_and_get_sampling_client_async(self) -> FakeSamplingClient:
        return await self.save_weights_and_get_sampling_client()

    def create_sampling_client(self, model_path: str) -> BackcompatSamplingClientFuture:
        self.server.log("create_sampling_client", model_path)
        return BackcompatSamplingClientFuture(self.server.submit(lambda: FakeSamplingClient(self.server, *self.server.samplers[model_path])))

    @DEPRECATED
    async def create_sampling_client_async(self, model_path: str) -> FakeSamplingClient:
        return await self.create_sampling_client(model_path)

    def get_info(self) -> types.GetInfoResponse:
        return types.GetInfoResponse(
            model_id=f"fake-{id(self)}", model_data=types.ModelData(model_name=self.base_model), is_lora=True, lora_rank=self.rank
        )


class FakeRestClient:
    """Stands in for `tinker.RestClient(base_url=..., api_key=...)`, over the service's server."""

    def __init__(self, _holder: Any = None, *, base_url: str | None = None, api_key: str | None = None) -> None:
        self.server = FakeServiceClient.server
        self.server.log("RestClient", base_url)

    def get_weights_info_by_tinker_path(self, tinker_path: str) -> AwaitableConcurrentFuture[types.WeightsInfoResponse]:
        _, _, base_model, rank = self.server.states[tinker_path]
        info = types.WeightsInfoResponse(base_model=base_model, is_lora=True, lora_rank=rank)
        return self.server.submit(lambda: info)


class FakeServiceClient:
    """Stands in for `tinker.ServiceClient(api_key=..., base_url=...)`."""

    server = Server()  # replaced per test by `fresh()`

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.server.log("ServiceClient", base_url)

    @classmethod
    def fresh(cls) -> Server:
        cls.server = Server()
        return cls.server

    def _training(self, make: Callable[[], FakeTrainingClient]) -> BackcompatTrainingClientFuture:
        return BackcompatTrainingClientFuture(self.server.submit(make))

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> BackcompatTrainingClientFuture:
        self.server.log("create_lora_training_client", base_model, rank, seed)
        return self._training(lambda: FakeTrainingClient(self.server, base_model, rank))

    @DEPRECATED
    async def create_lora_training_client_async(self, base_model: str, rank: int = 32, seed: int | None = None) -> FakeTrainingClient:
        return await self.create_lora_training_client(base_model, rank, seed)

    def _from_state(self, path: str, with_optimizer: bool) -> FakeTrainingClient:
        if self.server.older_api:
            import httpx
            import tinker

            request = httpx.Request("POST", "http://fake/api/v1/load_weights")
            raise tinker.UnprocessableEntityError(
                "Error code: 422 - field required: model_id", response=httpx.Response(422, request=request), body=None
            )
        w, optimizer, base_model, rank = self.server.states[path]
        return FakeTrainingClient(self.server, base_model, rank, w, optimizer if with_optimizer else None)

    def create_training_client_from_state(self, path: str) -> BackcompatTrainingClientFuture:
        self.server.log("create_training_client_from_state", path)
        return self._training(lambda: self._from_state(path, False))

    @DEPRECATED
    async def create_training_client_from_state_async(self, path: str) -> FakeTrainingClient:
        return await self.create_training_client_from_state(path)

    def create_training_client_from_state_with_optimizer(self, path: str) -> BackcompatTrainingClientFuture:
        self.server.log("create_training_client_from_state_with_optimizer", path)
        return self._training(lambda: self._from_state(path, True))

    @DEPRECATED
    async def create_training_client_from_state_with_optimizer_async(self, path: str) -> FakeTrainingClient:
        return await self.create_training_client_from_state_with_optimizer(path)

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None) -> BackcompatSamplingClientFuture:
        self.server.log("create_sampling_client", model_path, base_model)
        w, model = self.server.samplers[model_path] if model_path else (0.0, base_model)
        return BackcompatSamplingClientFuture(self.server.submit(lambda: FakeSamplingClient(self.server, w, model)))

    @DEPRECATED
    async def create_sampling_client_async(self, model_path: str | None = None, base_model: str | None = None) -> FakeSamplingClient:
        return await self.create_sampling_client(model_path, base_model)


FAKE_CLASSES = {
    "ServiceClient": FakeServiceClient,
    "TrainingClient": FakeTrainingClient,
    "SamplingClient": FakeSamplingClient,
    "RestClient": FakeRestClient,
}
