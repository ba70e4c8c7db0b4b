"""The local engine's SamplingClient: one frozen model, sampling and scoring.

Calls are queued, not run one by one: the service worker takes every request
waiting for this client's model at once, scores the `compute_logprobs` ones
(each in its own forward pass, so a score never depends on which requests
arrived beside it), and decodes the `sample` ones in one batch
(`generation.Decoder`). A request that arrives while a batch decodes joins it
at the next step, unless other work (a training step) is waiting for the
worker: then it waits for its own turn, so sampling never starves training.
The model is frozen, so running a request early changes nothing it returns.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.engines.futures import LocalFuture
from cookbook_cli.engines.local.generation import Decoder, SampleRequest, validate_prompt
from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from tinker import types

    from cookbook_cli.engines.local.models import LoadedModel
    from cookbook_cli.engines.local.service import LocalServiceClient
    from cookbook_cli.tokenizers import Tokenizer

SETTLE_S = 0.002  # how long a new batch waits for more requests to arrive...
SETTLE_MAX_S = 0.02  # ...at most, while they keep arriving


@dataclass
class ScoreRequest:
    tokens: list[int]
    future: Future[Any] = field(default_factory=Future)


class RequestQueue:
    """Requests waiting for one model, and the worker job that drains them."""

    def __init__(self, service: LocalServiceClient, run: Any) -> None:
        self._service = service
        self._run = run
        self._lock = threading.Lock()
        self._pending: list[SampleRequest | ScoreRequest] = []
        self._scheduled = False  # a drain job is queued and has not started

    def put(self, request: SampleRequest | ScoreRequest) -> None:
        with self._lock:
            self._pending.append(request)
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self._service.submit(self._drain)

    def _take(self) -> list[SampleRequest | ScoreRequest]:
        with self._lock:
            taken, self._pending = self._pending, []
            return taken

    def take_if_idle(self) -> list[SampleRequest | ScoreRequest]:
        """Waiting requests, unless other jobs wait for the worker (our own
        queued drain job aside: it will find nothing and return)."""
        with self._lock:
            if not self._pending or self._service.queued() > (1 if self._scheduled else 0):
                return []
            taken, self._pending = self._pending, []
            return taken

    def _settle(self) -> None:
        """Requests made together (an RL batch's gather) reach the queue a few
        microseconds apart; give the stragglers a moment to join this batch."""
        deadline = time.monotonic() + SETTLE_MAX_S
        seen = -1
        while time.monotonic() < deadline:
            with self._lock:
                n = len(self._pending)
            if n == seen:
                return
            seen = n
            time.sleep(SETTLE_S)

    def _drain(self) -> None:
        with self._lock:
            self._scheduled = False
        self._settle()
        requests = self._take()
        if requests:
            self._run(requests, self)


class LocalSamplingClient:
    def __init__(self, service: LocalServiceClient, loaded: LoadedModel) -> None:
        self._service = service
        self._loaded = loaded
        self._vocab_size = loaded.vocab_size
        self._queue = RequestQueue(service, self._serve)
        # Requests and rows of each decode batch, newest last (a diagnostic the tests read).
        self.batches: deque[tuple[int, int]] = deque(maxlen=256)

    @property
    def model(self) -> Any:
        """The frozen torch module this client samples from."""
        return self._loaded.model

    # -- serving (on the worker) -----------------------------------------------------
    def _score(self, requests: list[ScoreRequest]) -> None:
        from cookbook_cli.engines.local.passes import score

        svc = self._service
        try:
            # One pass per request: which requests share a job depends on when they
            # arrive, and a sequence's logprobs differ (~1e-6) with what it is packed
            # beside, so packing them together made a run's metrics depend on timing.
            results = [
                score(self.model, svc.precision, [r.tokens], svc.packing, svc.max_tokens_for(self._vocab_size))[0]
                for r in requests
            ]
        except BaseException as e:  # noqa: BLE001 - handed to every caller waiting on it
            for r in requests:
                r.future.set_exception(e)
            return
        for r, lps in zip(requests, results, strict=True):
            r.future.set_result(lps)

    def _serve(self, requests: list[SampleRequest | ScoreRequest], queue: RequestQueue) -> None:
        taken = list(requests)
        try:
            self._decode(requests, queue, taken)
        except BaseException as e:  # noqa: BLE001 - nobody is left waiting on a request this job took
            for r in taken:
                if not r.future.done():
                    r.future.set_exception(e)

    def _decode(self, requests: list[SampleRequest | ScoreRequest], queue: RequestQueue, taken: list[Any]) -> None:
        lm = self._loaded
        decoder = Decoder(lm.model, self._service.precision, lm.tokenizer)
        waiting: deque[SampleRequest] = deque()
        counted: set[int] = set()
        while True:
            scores = [r for r in requests if isinstance(r, ScoreRequest)]
            if scores:
                self._score(scores)
            waiting.extend(r for r in requests if isinstance(r, SampleRequest))
            while waiting and decoder.can_join(waiting[0], self._service.max_sampling_rows):
                req = waiting.popleft()
                try:
                    decoder.admit(req)
                except BaseException as e:  # noqa: BLE001 - this request fails, the batch goes on
                    if not req.future.done():
                        req.future.set_exception(e)
            if not decoder.active:
                if not waiting:
                    return
                continue
            self._count(decoder, counted)
            try:
                decoder.step()
            except BaseException as e:  # noqa: BLE001 - every request in the batch gets the error
                decoder.fail(e)
            requests = queue.take_if_idle() if not waiting else []
            taken += requests

    def _count(self, decoder: Decoder, counted: set[int]) -> None:
        """Record a batch's requests and rows when its membership grows."""
        ids = {id(r.request) for r in decoder.rows}
        if not ids <= counted:
            counted |= ids
            self.batches.append((len(ids), len(decoder.rows)))

    # -- the client API ------------------------------------------------------------------
    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> LocalFuture[types.SampleResponse]:
        """`num_samples` completions of `prompt`, as tinker's `SamplingClient.sample`:
        `include_prompt_logprobs` adds each prompt token's logprob, and
        `topk_prompt_logprobs` / `topk_sample_logprobs` = K the K most likely
        tokens with their logprobs at each prompt / sampled position."""
        from tinker import types as tt

        if not isinstance(sampling_params, tt.SamplingParams):
            raise CookbookError(f"sampling_params must be tinker.types.SamplingParams, got {type(sampling_params).__name__}")
        tokens = validate_prompt(prompt, self._vocab_size)
        lm = self._loaded
        request = SampleRequest.build(
            tokens,
            int(num_samples),
            sampling_params,
            lm.eos_token_ids,
            lm.max_positions,
            bool(include_prompt_logprobs),
            topk_prompt_logprobs,
            topk_sample_logprobs,
        )
        self._queue.put(request)
        return LocalFuture(request.future)

    async def sample_async(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> types.SampleResponse:
        return await self.sample(
            prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs, topk_sample_logprobs
        )

    def compute_logprobs(self, prompt: types.ModelInput) -> LocalFuture[list[float | None]]:
        request = ScoreRequest(validate_prompt(prompt, self._vocab_size))
        self._queue.put(request)
        return LocalFuture(request.future)

    async def compute_logprobs_async(self, prompt: types.ModelInput) -> list[float | None]:
        return await self.compute_logprobs(prompt)

    def get_tokenizer(self) -> Tokenizer:
        return self._loaded.tokenizer

    def get_base_model(self) -> str:
        return self._loaded.base_model
