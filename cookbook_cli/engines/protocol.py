"""The training/sampling client protocol every recipe talks to.

It is the Tinker client surface, so a recipe written against it runs on the
`tinker` engine (the SDK itself) and on the `local` engine (PyTorch) unchanged.
`tinker.types` (Datum, ModelInput, TensorData, SamplingParams, AdamParams, ...)
are the values that cross it.

Calling conventions, as in the Tinker SDK:

- A training operation (`forward`, `forward_backward`, `optim_step`,
  `save_state`, ...) returns an `APIFuture` at once; operations on one client
  run in submission order, so submit `optim_step` before waiting on
  `forward_backward`. Its `_async` twin is a coroutine returning the same
  future: `fut = await tc.forward_backward_async(...); out = await fut`.
- `sample` / `compute_logprobs` return an `APIFuture`; their `_async` twins
  return the result itself (`resp = await sc.sample_async(...)`).
- Client factories (`create_lora_training_client`, `create_sampling_client`,
  `save_weights_and_get_sampling_client`, ...) return the client; their
  `_async` twins are coroutines returning the client.
- `forward_backward` accumulates gradients until the next `optim_step`.

Only `typing` is imported here: recipes import this module at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import torch
    from tinker import types

    from cookbook_cli.tokenizers import Tokenizer

T_co = TypeVar("T_co", covariant=True)

CustomLossFn = Callable[
    ["list[types.Datum]", "list[torch.Tensor]"], "tuple[torch.Tensor, dict[str, float]]"
]
"""`fn(data, logprobs_list) -> (loss, metrics)`: `logprobs_list[i]` holds the
per-token logprobs of `data[i]`'s target tokens (shape of its `target_tokens`)
and requires grad; `loss` is a scalar tensor; `metrics` maps names to floats."""

LossFnConfig = Mapping[str, float]


@runtime_checkable
class APIFuture(Protocol[T_co]):
    """A result that can be waited for (`result()`) or awaited (`await fut`)."""

    def result(self, timeout: float | None = None) -> T_co: ...

    async def result_async(self, timeout: float | None = None) -> T_co: ...

    def __await__(self) -> Generator[Any, None, T_co]: ...


@runtime_checkable
class SamplingClient(Protocol):
    """Samples from, and scores tokens under, one fixed set of weights."""

    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> APIFuture[types.SampleResponse]: ...

    async def sample_async(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> types.SampleResponse: ...

    def compute_logprobs(self, prompt: types.ModelInput) -> APIFuture[list[float | None]]:
        """Logprob of each prompt token given the ones before it (None for the first)."""
        ...

    async def compute_logprobs_async(self, prompt: types.ModelInput) -> list[float | None]: ...

    def get_tokenizer(self) -> Tokenizer: ...

    def get_base_model(self) -> str: ...


@runtime_checkable
class TrainingClient(Protocol):
    """One model being trained (LoRA adapter, or all weights on engines that allow it)."""

    def forward(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: LossFnConfig | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]: ...

    async def forward_async(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: LossFnConfig | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]: ...

    def forward_backward(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: LossFnConfig | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]: ...

    async def forward_backward_async(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: LossFnConfig | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]: ...

    def forward_backward_custom(
        self, data: Sequence[types.Datum], loss_fn: CustomLossFn
    ) -> APIFuture[types.ForwardBackwardOutput]: ...

    async def forward_backward_custom_async(
        self, data: Sequence[types.Datum], loss_fn: CustomLossFn
    ) -> APIFuture[types.ForwardBackwardOutput]: ...

    def optim_step(self, adam_params: types.AdamParams) -> APIFuture[types.OptimStepResponse]: ...

    async def optim_step_async(self, adam_params: types.AdamParams) -> APIFuture[types.OptimStepResponse]: ...

    def save_state(self, name: str, overwrite: bool = False) -> APIFuture[types.SaveWeightsResponse]:
        """Weights and optimizer state, to resume training; `.path` names it.
        An existing checkpoint of that name is an error unless `overwrite`."""
        ...

    async def save_state_async(self, name: str, overwrite: bool = False) -> APIFuture[types.SaveWeightsResponse]: ...

    def load_state(self, path: str) -> APIFuture[types.LoadWeightsResponse]:
        """Weights only; the optimizer starts afresh."""
        ...

    async def load_state_async(self, path: str) -> APIFuture[types.LoadWeightsResponse]: ...

    def load_state_with_optimizer(self, path: str) -> APIFuture[types.LoadWeightsResponse]: ...

    async def load_state_with_optimizer_async(self, path: str) -> APIFuture[types.LoadWeightsResponse]: ...

    def save_weights_for_sampler(self, name: str) -> APIFuture[types.SaveWeightsForSamplerResponse]:
        """Weights for sampling; pass `.path` to `create_sampling_client(model_path=...)`."""
        ...

    async def save_weights_for_sampler_async(self, name: str) -> APIFuture[types.SaveWeightsForSamplerResponse]: ...

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> SamplingClient:
        """A sampling client over a snapshot of the current weights."""
        ...

    async def save_weights_and_get_sampling_client_async(self, name: str | None = None) -> SamplingClient: ...

    def create_sampling_client(self, model_path: str) -> SamplingClient: ...

    async def create_sampling_client_async(self, model_path: str) -> SamplingClient: ...

    def get_info(self) -> types.GetInfoResponse: ...

    def get_tokenizer(self) -> Tokenizer: ...

    def get_base_model(self) -> str: ...


@runtime_checkable
class ServiceClient(Protocol):
    """An engine's entry point: creates training and sampling clients."""

    engine: str

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> TrainingClient:
        """A LoRA of `rank` over `base_model` (rank 0: full fine-tuning, where the engine allows it)."""
        ...

    async def create_lora_training_client_async(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> TrainingClient: ...

    def create_training_client_from_state(self, path: str) -> TrainingClient:
        """A training client whose weights come from `save_state`'s path (fresh optimizer)."""
        ...

    async def create_training_client_from_state_async(self, path: str) -> TrainingClient: ...

    def create_training_client_from_state_with_optimizer(self, path: str) -> TrainingClient: ...

    async def create_training_client_from_state_with_optimizer_async(self, path: str) -> TrainingClient: ...

    def create_sampling_client(
        self, model_path: str | None = None, base_model: str | None = None
    ) -> SamplingClient:
        """Sample from saved sampler weights (`model_path`) or an untrained `base_model`."""
        ...

    async def create_sampling_client_async(
        self, model_path: str | None = None, base_model: str | None = None
    ) -> SamplingClient: ...
