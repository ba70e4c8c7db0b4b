"""The `tinker` engine: the Tinker SDK's own clients behind the protocol.

The SDK already has the protocol's shape; these thin wrappers only pin the
calling conventions (its newest releases deprecate the `_async` twins and
return futures of clients, which recipes here do not have to know about),
give tokenizers as `cookbook_cli.tokenizers.Tokenizer`, and turn setup
mistakes into one-line errors.

Before the SDK opens a session, one request checks that the service answers
(the SDK itself retries an unreachable service for minutes without a word):
a refused or timed-out connection is retried a few times, each retry said on
stderr, then fails in one line naming the URL; a rejected API key fails at
once.

Restoring a checkpoint into a new client takes one request on the current
Tinker API (`create_training_client_from_state*`). Services that predate it
(SkyRL's Tinker server 0.4, which `scripts/tinker_local_server.sh` runs) reject
that request for its missing `model_id`; on those the engine creates a LoRA
client of the checkpoint's base model and rank and makes loading the state its
first request, the older API's way, said once on stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cookbook_cli.engines.futures import LocalFuture
from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import tinker
    from tinker import types

    from cookbook_cli.engines.protocol import APIFuture, CustomLossFn
    from cookbook_cli.tokenizers import Tokenizer

MISSING_KEY = (
    "TINKER_API_KEY is not set: export TINKER_API_KEY=<key from the Tinker console> to use the tinker engine, "
    "or run with --engine local"
)
CONNECT_ATTEMPTS = 3
RETRY_DELAYS = (0.5, 1.0)  # seconds before the 2nd and the 3rd attempt


def _client(maybe_future: Any) -> Any:
    """SDK factories return a client, or (newer SDKs) a future of one."""
    from tinker import APIFuture as SdkFuture

    return maybe_future.result() if isinstance(maybe_future, SdkFuture) else maybe_future


async def _client_async(maybe_future: Any) -> Any:
    from tinker import APIFuture as SdkFuture

    return await maybe_future if isinstance(maybe_future, SdkFuture) else maybe_future


async def _call_async(obj: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """The client an SDK factory makes, without blocking the event loop: its
    `<method>_async` twin on SDKs where the plain factory blocks, the plain
    factory's future, awaited, on SDKs that deprecate the twin (0.38 and later)."""
    twin = getattr(obj, f"{method}_async", None)
    if twin is not None and not getattr(twin, "__deprecated__", None):
        return await _client_async(await twin(*args, **kwargs))
    return await _client_async(getattr(obj, method)(*args, **kwargs))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _unreachable(base_url: str, reason: str, attempts: int) -> str:
    return (
        f"cannot reach the Tinker service at {base_url} ({reason}; {attempts} attempts): check the URL "
        "(engine_options.base_url or TINKER_BASE_URL), your network and proxy settings"
    )


def _key_rejected(base_url: str, status: int, detail: str) -> str:
    return (
        f"the Tinker service at {base_url} rejected the API key (HTTP {status}{': ' + detail if detail else ''}): "
        "check TINKER_API_KEY (a key from the Tinker console)"
    )


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    return str(body.get("detail") or body.get("message") or body)[:200] if isinstance(body, dict) else str(body)[:200]


def check_service(
    base_url: str,
    api_key: str,
    attempts: int = CONNECT_ATTEMPTS,
    say: Callable[[str], None] = _say,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Raise a one-line CookbookError unless the Tinker service at `base_url`
    answers and accepts `api_key`. The request is the SDK's first one (its
    client configuration); a transport failure is retried `attempts` times in
    all, each retry announced through `say`."""
    import httpx
    import tinker

    url = f"{base_url}/api/v1/client/config"
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(
                url, json={"sdk_version": tinker.__version__}, headers={"X-API-Key": api_key}, timeout=httpx.Timeout(20, connect=5)
            )
        except httpx.TransportError as e:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if attempt == attempts:
                raise CookbookError(_unreachable(base_url, reason, attempts)) from None
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
            say(f"tinker: cannot reach {base_url} ({reason}); retrying in {delay:g} s (attempt {attempt + 1} of {attempts})")
            sleep(delay)
            continue
        if response.status_code in (401, 403):
            raise CookbookError(_key_rejected(base_url, response.status_code, _detail(response)))
        return


@contextmanager
def _sdk_errors(base_url: str) -> Iterator[None]:
    """The SDK's connection, authentication and other refusals as one-line CookbookErrors."""
    import tinker

    try:
        yield
    except (tinker.AuthenticationError, tinker.PermissionDeniedError) as e:
        raise CookbookError(_key_rejected(base_url, e.status_code, _detail(e.response))) from None
    except tinker.APIConnectionError as e:
        raise CookbookError(_unreachable(base_url, f"{type(e).__name__}: {e}", 1)) from None
    except tinker.APIStatusError as e:
        raise CookbookError(f"the Tinker service at {base_url} refused a request (HTTP {e.status_code}: {_detail(e.response)})") from None


def _predates_one_request_restore(error: Exception) -> bool:
    """The service's answer to a one-request restore is that of an older API:
    HTTP 422 because the load request names no existing model (`model_id`)."""
    import tinker

    return isinstance(error, tinker.UnprocessableEntityError) and "model_id" in str(error)


OLDER_RESTORE = (
    "tinker: {url} restores checkpoints the older way (no one-request create_training_client_from_state); "
    "creating a client of the checkpoint's shape and loading the state into it"
)


class _DropLoadStateDeprecation(logging.Filter):
    """The SDK logs an error each time the older load is used; on a service that
    only has that one, the engine has said why once already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("DEPRECATED: TrainingClient.load_state")


def _load_the_older_way(client: Any, path: str, with_optimizer: bool) -> Any:
    """The SDK future of loading `path` into a live SDK training client (the
    older API's restore), without the SDK's deprecation warning and log line."""
    sdk_logger = logging.getLogger("tinker.lib.public_interfaces.training_client")
    quiet = _DropLoadStateDeprecation()
    sdk_logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return (client.load_state_with_optimizer if with_optimizer else client.load_state)(path)
    finally:
        sdk_logger.removeFilter(quiet)


def _tokenizer(base_model: str) -> Tokenizer:
    from cookbook_cli.tokenizers import get_tokenizer

    return get_tokenizer(base_model)


class TinkerSamplingClient:
    def __init__(self, inner: tinker.SamplingClient, base_model: str | None) -> None:
        self.inner = inner
        self._base_model = base_model

    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> APIFuture[types.SampleResponse]:
        topk = {"topk_prompt_logprobs": topk_prompt_logprobs} if topk_prompt_logprobs else {}
        if topk_sample_logprobs:
            topk["topk_sample_logprobs"] = topk_sample_logprobs
        return self.inner.sample(prompt, num_samples, sampling_params, include_prompt_logprobs=include_prompt_logprobs, **topk)

    async def sample_async(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> types.SampleResponse:
        return await self.sample(prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs, topk_sample_logprobs)

    def compute_logprobs(self, prompt: types.ModelInput) -> APIFuture[list[float | None]]:
        return self.inner.compute_logprobs(prompt)

    async def compute_logprobs_async(self, prompt: types.ModelInput) -> list[float | None]:
        return await self.compute_logprobs(prompt)

    def get_base_model(self) -> str:
        if self._base_model is None:
            self._base_model = self.inner.get_base_model()
        return self._base_model

    def get_tokenizer(self) -> Tokenizer:
        return _tokenizer(self.get_base_model())


class TinkerTrainingClient:
    def __init__(self, service: TinkerServiceClient, inner: tinker.TrainingClient, base_model: str) -> None:
        self._service = service
        self.inner = inner
        self._base_model = base_model

    def forward(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, float] | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]:
        return self.inner.forward(list(data), loss_fn, dict(loss_fn_config) if loss_fn_config else None)  # type: ignore[arg-type]

    async def forward_async(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, float] | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]:
        return self.forward(data, loss_fn, loss_fn_config)

    def forward_backward(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, float] | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]:
        return self.inner.forward_backward(list(data), loss_fn, dict(loss_fn_config) if loss_fn_config else None)  # type: ignore[arg-type]

    async def forward_backward_async(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, float] | None = None
    ) -> APIFuture[types.ForwardBackwardOutput]:
        return self.forward_backward(data, loss_fn, loss_fn_config)

    def forward_backward_custom(self, data: Sequence[types.Datum], loss_fn: CustomLossFn) -> APIFuture[types.ForwardBackwardOutput]:
        return self.inner.forward_backward_custom(list(data), loss_fn)

    async def forward_backward_custom_async(
        self, data: Sequence[types.Datum], loss_fn: CustomLossFn
    ) -> APIFuture[types.ForwardBackwardOutput]:
        return self.forward_backward_custom(data, loss_fn)

    def optim_step(self, adam_params: types.AdamParams) -> APIFuture[types.OptimStepResponse]:
        return self.inner.optim_step(adam_params)

    async def optim_step_async(self, adam_params: types.AdamParams) -> APIFuture[types.OptimStepResponse]:
        return self.optim_step(adam_params)

    def save_state(self, name: str, overwrite: bool = False) -> APIFuture[types.SaveWeightsResponse]:
        return self.inner.save_state(name, overwrite=overwrite)

    async def save_state_async(self, name: str, overwrite: bool = False) -> APIFuture[types.SaveWeightsResponse]:
        return self.save_state(name, overwrite)

    # The SDK deprecates loading into a live client in favour of a new client
    # created from the state; these swap to that client before returning (on a
    # service of the older API, this client itself when it is still unused).
    def _reload(self, path: str, with_optimizer: bool) -> APIFuture[types.LoadWeightsResponse]:
        from tinker import types

        self.inner = self._service._restore(path, with_optimizer, live=self.inner)
        return LocalFuture.completed(types.LoadWeightsResponse(path=path))

    async def _reload_async(self, path: str, with_optimizer: bool) -> APIFuture[types.LoadWeightsResponse]:
        from tinker import types

        self.inner = await self._service._restore_async(path, with_optimizer, live=self.inner)
        return LocalFuture.completed(types.LoadWeightsResponse(path=path))

    def load_state(self, path: str) -> APIFuture[types.LoadWeightsResponse]:
        return self._reload(path, with_optimizer=False)

    async def load_state_async(self, path: str) -> APIFuture[types.LoadWeightsResponse]:
        return await self._reload_async(path, with_optimizer=False)

    def load_state_with_optimizer(self, path: str) -> APIFuture[types.LoadWeightsResponse]:
        return self._reload(path, with_optimizer=True)

    async def load_state_with_optimizer_async(self, path: str) -> APIFuture[types.LoadWeightsResponse]:
        return await self._reload_async(path, with_optimizer=True)

    def save_weights_for_sampler(self, name: str) -> APIFuture[types.SaveWeightsForSamplerResponse]:
        return self.inner.save_weights_for_sampler(name)

    async def save_weights_for_sampler_async(self, name: str) -> APIFuture[types.SaveWeightsForSamplerResponse]:
        return self.save_weights_for_sampler(name)

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> TinkerSamplingClient:
        if name is not None:
            self.save_weights_for_sampler(name).result()
        return TinkerSamplingClient(_client(self.inner.save_weights_and_get_sampling_client()), self._base_model)

    async def save_weights_and_get_sampling_client_async(self, name: str | None = None) -> TinkerSamplingClient:
        if name is not None:
            await self.save_weights_for_sampler(name)
        inner = await _call_async(self.inner, "save_weights_and_get_sampling_client")
        return TinkerSamplingClient(inner, self._base_model)

    def create_sampling_client(self, model_path: str) -> TinkerSamplingClient:
        return TinkerSamplingClient(_client(self.inner.create_sampling_client(model_path)), self._base_model)

    async def create_sampling_client_async(self, model_path: str) -> TinkerSamplingClient:
        inner = await _call_async(self.inner, "create_sampling_client", model_path)
        return TinkerSamplingClient(inner, self._base_model)

    def get_info(self) -> types.GetInfoResponse:
        return self.inner.get_info()

    def get_tokenizer(self) -> Tokenizer:
        return _tokenizer(self._base_model)

    def get_base_model(self) -> str:
        return self._base_model


class TinkerServiceClient:
    """Tinker's ServiceClient. Args: api_key (default $TINKER_API_KEY), base_url
    (default $TINKER_BASE_URL, else the SDK's), and any other keyword the SDK's
    ServiceClient takes. Checks that the service answers and accepts the key
    (`check_service`) before the SDK opens a session."""

    engine = "tinker"

    def __init__(self, api_key: str | None = None, base_url: str | None = None, **options: Any) -> None:
        key = api_key or os.environ.get("TINKER_API_KEY")
        if not key:
            raise CookbookError(MISSING_KEY)
        import tinker
        from tinker.lib.base_url import resolve_base_url

        self.base_url = resolve_base_url(base_url)
        check_service(self.base_url, key)
        self._api_key = key
        with _sdk_errors(self.base_url):
            self.inner = tinker.ServiceClient(api_key=key, base_url=base_url, **options)
        self._one_request_restore = True  # until the service answers like an older API

    def _make(self, factory: str, *args: Any, **kwargs: Any) -> Any:
        """The client an SDK factory makes, its errors as one-line CookbookErrors."""
        with _sdk_errors(self.base_url):
            return _client(getattr(self.inner, factory)(*args, **kwargs))

    async def _make_async(self, factory: str, *args: Any, **kwargs: Any) -> Any:
        with _sdk_errors(self.base_url):
            return await _call_async(self.inner, factory, *args, **kwargs)

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> TinkerTrainingClient:
        _check_rank(rank)
        inner = self._make(
            "create_lora_training_client",
            base_model, rank=rank, seed=seed, train_mlp=train_mlp, train_attn=train_attn, train_unembed=train_unembed,
        )
        return TinkerTrainingClient(self, inner, base_model)

    async def create_lora_training_client_async(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> TinkerTrainingClient:
        _check_rank(rank)
        inner = await self._make_async(
            "create_lora_training_client",
            base_model, rank=rank, seed=seed, train_mlp=train_mlp, train_attn=train_attn, train_unembed=train_unembed,
        )
        return TinkerTrainingClient(self, inner, base_model)

    def _wrap_from_state(self, inner: Any) -> TinkerTrainingClient:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            base = inner.get_info().model_data.model_name or ""
        return TinkerTrainingClient(self, inner, base)

    @staticmethod
    def _from_state_factory(with_optimizer: bool) -> str:
        return "create_training_client_from_state" + ("_with_optimizer" if with_optimizer else "")

    def _older_api(self) -> None:
        self._one_request_restore = False
        _say(OLDER_RESTORE.format(url=self.base_url))

    def _shaped_like(self, path: str) -> Any:
        """A new SDK LoRA client of the checkpoint's base model, rank and trained layers."""
        import tinker

        rest = tinker.RestClient(base_url=self.base_url, api_key=self._api_key)
        info = rest.get_weights_info_by_tinker_path(path).result()
        layers = {k: v for k in ("train_mlp", "train_attn", "train_unembed") if (v := getattr(info, k, None)) is not None}
        return _client(self.inner.create_lora_training_client(info.base_model, rank=info.lora_rank or 32, **layers))

    def _restore(self, path: str, with_optimizer: bool, live: Any = None) -> Any:
        """An SDK training client holding the state at `path`: made by the
        one-request factory, or on a service of the older API, `live` (an unused
        client) or a new one of the checkpoint's shape, whose first request loads it."""
        with _sdk_errors(self.base_url):
            if self._one_request_restore:
                try:
                    return _client(getattr(self.inner, self._from_state_factory(with_optimizer))(path))
                except Exception as e:
                    if not _predates_one_request_restore(e):
                        raise
                    self._older_api()
            target = live if live is not None else self._shaped_like(path)
            _load_the_older_way(target, path, with_optimizer).result()
            return target

    async def _restore_async(self, path: str, with_optimizer: bool, live: Any = None) -> Any:
        with _sdk_errors(self.base_url):
            if self._one_request_restore:
                try:
                    return await _call_async(self.inner, self._from_state_factory(with_optimizer), path)
                except Exception as e:
                    if not _predates_one_request_restore(e):
                        raise
                    self._older_api()
            import asyncio

            target = live if live is not None else await asyncio.to_thread(self._shaped_like, path)
            await _load_the_older_way(target, path, with_optimizer)
            return target

    def create_training_client_from_state(self, path: str) -> TinkerTrainingClient:
        return self._wrap_from_state(self._restore(path, with_optimizer=False))

    async def create_training_client_from_state_async(self, path: str) -> TinkerTrainingClient:
        return self._wrap_from_state(await self._restore_async(path, with_optimizer=False))

    def create_training_client_from_state_with_optimizer(self, path: str) -> TinkerTrainingClient:
        return self._wrap_from_state(self._restore(path, with_optimizer=True))

    async def create_training_client_from_state_with_optimizer_async(self, path: str) -> TinkerTrainingClient:
        return self._wrap_from_state(await self._restore_async(path, with_optimizer=True))

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None) -> TinkerSamplingClient:
        inner = self._make("create_sampling_client", model_path=model_path, base_model=base_model)
        return TinkerSamplingClient(inner, base_model)

    async def create_sampling_client_async(
        self, model_path: str | None = None, base_model: str | None = None
    ) -> TinkerSamplingClient:
        inner = await self._make_async("create_sampling_client", model_path=model_path, base_model=base_model)
        return TinkerSamplingClient(inner, base_model)


def _check_rank(rank: int) -> None:
    if not isinstance(rank, int) or rank < 1:
        raise CookbookError(f"the tinker engine trains LoRA adapters (rank >= 1), got rank {rank!r}; use --engine local for full fine-tuning")
