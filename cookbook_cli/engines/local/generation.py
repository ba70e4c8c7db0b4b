"""Sampling with a KV cache, batched across the samples of a request and across
concurrent requests.

Each request's prompt is run alone (its prompt logprobs and first-token
logits are exactly what it would get alone), its cache repeated for each of
its samples, and then its rows join one decode batch with every other running
request: caches of different lengths sit left-padded side by side, each row
with its own position ids, and the padding is masked out. A finished row
leaves the batch at once, so it costs nothing afterwards; a request that
arrives while a batch decodes joins it at the next step (`Decoder.admit`).

Every request keeps its own stop rule, `max_tokens` and random generator
(seeded from its `SamplingParams.seed`), and draws its tokens from its own rows
only, so the draws it makes are the ones it makes alone. Batching changes only
the float rounding of the decode steps' logits (other matrix shapes, masked
attention): about 1e-6 in float32 and 1e-15 in float64. A token can differ from
the one drawn alone only where a draw falls within that distance of the
boundary between two tokens' probability mass.

Returned logprobs are those of the model's own (untempered, untruncated)
distribution, the quantity `compute_logprobs` gives, so the two agree up to
float rounding of incremental versus full-sequence attention.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch
    from tinker import types

    from cookbook_cli.engines.local.precision import Precision
    from cookbook_cli.tokenizers import Tokenizer

DEFAULT_MAX_TOKENS = 256
MASK_LOGPROB = -99999.0  # tinker's TopkLogprobs filler where a position has no entries


@dataclass(frozen=True)
class StopRule:
    token_ids: frozenset[int]
    strings: tuple[str, ...]
    window: int  # tokens to decode when looking for a stop string

    @classmethod
    def build(cls, stop: str | Sequence[str] | Sequence[int] | None, eos_ids: Sequence[int]) -> StopRule:
        """None: stop at end-of-sequence tokens; []: never stop early; else token ids or strings."""
        if stop is None:
            return cls(frozenset(eos_ids), (), 0)
        items = [stop] if isinstance(stop, str) else list(stop)
        if all(isinstance(s, int) and not isinstance(s, bool) for s in items):
            return cls(frozenset(items), (), 0)
        if all(isinstance(s, str) for s in items):
            strings = tuple(s for s in items if s)
            window = max((len(s.encode("utf-8")) for s in strings), default=0) + 1
            return cls(frozenset(), strings, window)
        raise CookbookError(f"stop must be token ids or strings, not a mix: {stop!r}")

    def hit(self, tokens: list[int], tokenizer: Tokenizer) -> bool:
        if tokens[-1] in self.token_ids:
            return True
        if self.strings:
            # A stop string of b bytes spans at most b tokens, so the tail suffices.
            tail = tokenizer.decode(tokens[-self.window :])
            return any(s in tail for s in self.strings)
        return False


def _pick(logits: torch.Tensor, logp: torch.Tensor, params: types.SamplingParams, gen: torch.Generator) -> torch.Tensor:
    """Next tokens from (N, V) float logits (and their log-softmax `logp`) under
    temperature / top_k / top_p."""
    import torch

    temperature = float(params.temperature if params.temperature is not None else 1.0)
    if temperature <= 0:
        return logits.argmax(-1)
    top_k = params.top_k if params.top_k is not None else -1
    top_p = params.top_p if params.top_p is not None else 1.0
    if temperature == 1.0 and not 0 < top_k < logits.shape[-1] and top_p >= 1.0:
        return _inverse_cdf(logp.exp(), gen)  # the model's own distribution: no second softmax
    scaled = logits / temperature
    if 0 < top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(scaled, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the mass before it already reaches top_p; the first always stays.
        drop = (probs.cumsum(-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        scaled = torch.full_like(scaled, float("-inf")).scatter(-1, order, sorted_logits)
    return _inverse_cdf(scaled.softmax(-1), gen)


def _inverse_cdf(probs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One draw per row of (N, V) probabilities, one uniform each: torch.multinomial
    costs several times more on a large vocabulary. float64 sums keep every
    token's share of the CDF, and searching right of ties never lands on a
    zero-probability token."""
    import torch

    cdf = probs.cumsum(-1, dtype=torch.float64)
    u = torch.rand(cdf.shape[0], 1, generator=gen, device=cdf.device, dtype=torch.float64)
    picked = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(-1)
    return picked.clamp_(max=cdf.shape[-1] - 1)


def _generator(device: torch.device, seed: int | None) -> torch.Generator:
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
    return gen


def validate_prompt(prompt: types.ModelInput, vocab_size: int) -> list[int]:
    try:
        tokens = prompt.to_ints()
    except ValueError:
        raise CookbookError("the local engine samples from token prompts only (EncodedTextChunk)") from None
    if not tokens:
        raise CookbookError("the prompt is empty")
    if min(tokens) < 0 or max(tokens) >= vocab_size:
        raise CookbookError(f"prompt tokens outside the vocabulary [0, {vocab_size})")
    return tokens


def _topk(logprobs: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most likely tokens and their logprobs of each (n, V) row, most likely first."""
    k = min(k, logprobs.shape[-1])
    values, ids = logprobs.topk(k, dim=-1)
    return ids.cpu().numpy().astype(np.int32), values.float().cpu().numpy()


# -- the model's cache interface, across transformers versions ------------------------------------


@dataclass(frozen=True)
class ModelCalls:
    """How to hand a cache to this model and read it back (`cache` since
    transformers 5.x, `past_key_values` before), and whether it can compute
    the last position's logits only."""

    cache_arg: str
    logits_to_keep: bool

    @classmethod
    def of(cls, model: Any) -> ModelCalls:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        return cls("cache" if "cache" in params else "past_key_values", "logits_to_keep" in params)

    def cache_of(self, out: Any) -> Any:
        cache = getattr(out, "cache", None) if self.cache_arg == "cache" else None
        return cache if cache is not None else out.past_key_values


def _mergeable(cache: Any) -> bool:
    """Whether this cache is a list of plain growing layers, which can be
    left-padded and stacked along the batch; other kinds (sliding windows,
    quantised, static) decode one request at a time."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    layers = getattr(cache, "layers", None)
    return type(cache) is DynamicCache and bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


# -- requests -------------------------------------------------------------------------------------


@dataclass
class SampleRequest:
    """One `sample` call: what it asked for, and its progress."""

    prompt: list[int]
    num_samples: int
    params: types.SamplingParams
    stop: StopRule
    max_tokens: int
    include_prompt_logprobs: bool = False
    topk_prompt_logprobs: int = 0
    topk_sample_logprobs: int = 0
    future: Future[Any] = field(default_factory=Future)
    tokens: list[list[int]] = field(default_factory=list)
    logprobs: list[list[float]] = field(default_factory=list)
    topk_ids: list[list[np.ndarray]] = field(default_factory=list)
    topk_lps: list[list[np.ndarray]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    prompt_lps: np.ndarray | None = None
    prompt_topk: tuple[np.ndarray, np.ndarray] | None = None
    gen: Any = None

    @classmethod
    def build(
        cls,
        prompt: list[int],
        num_samples: int,
        params: types.SamplingParams,
        eos_ids: Sequence[int],
        max_positions: int | None,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
    ) -> SampleRequest:
        """A checked request (raises at the call that made it, not later)."""
        if num_samples < 1:
            raise CookbookError(f"num_samples must be at least 1, got {num_samples}")
        for name, k in (("topk_prompt_logprobs", topk_prompt_logprobs), ("topk_sample_logprobs", topk_sample_logprobs)):
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise CookbookError(f"{name} must be a whole number >= 0, got {k!r}")
        max_tokens = params.max_tokens if params.max_tokens is not None else DEFAULT_MAX_TOKENS
        if max_tokens < 1:
            raise CookbookError(f"max_tokens must be at least 1, got {max_tokens}")
        if max_positions is not None:
            if len(prompt) >= max_positions:
                raise CookbookError(f"prompt of {len(prompt)} tokens fills the model's context of {max_positions}")
            max_tokens = min(max_tokens, max_positions - len(prompt))
        n = num_samples
        return cls(
            prompt=prompt,
            num_samples=n,
            params=params,
            stop=StopRule.build(params.stop, eos_ids),
            max_tokens=max_tokens,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            topk_sample_logprobs=topk_sample_logprobs,
            tokens=[[] for _ in range(n)],
            logprobs=[[] for _ in range(n)],
            topk_ids=[[] for _ in range(n)],
            topk_lps=[[] for _ in range(n)],
            reasons=["length"] * n,
        )

    def record(self, rows: Sequence[int], logits: torch.Tensor, tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
        """Draw the next token of each sample in `rows` from its (len(rows), V)
        logits; returns the rows still running and their new tokens."""
        logp = logits.log_softmax(-1)
        nxt = _pick(logits, logp, self.params, self.gen)
        chosen = logp.gather(-1, nxt[:, None]).squeeze(-1).cpu().tolist()
        if self.topk_sample_logprobs:
            ids, lps = _topk(logp, self.topk_sample_logprobs)
        keep: list[int] = []
        new: list[int] = []
        for j, (seq, tok, lp_tok) in enumerate(zip(rows, nxt.cpu().tolist(), chosen, strict=True)):
            self.tokens[seq].append(tok)
            self.logprobs[seq].append(lp_tok)
            if self.topk_sample_logprobs:
                self.topk_ids[seq].append(ids[j])
                self.topk_lps[seq].append(lps[j])
            if self.stop.hit(self.tokens[seq], tokenizer):
                self.reasons[seq] = "stop"
            elif len(self.tokens[seq]) < self.max_tokens:
                keep.append(seq)
                new.append(tok)
        return keep, new

    def response(self) -> types.SampleResponse:
        from tinker import types
        from tinker.types.topk_logprobs import TopkLogprobs

        run = uuid.uuid4().hex[:12]
        sequences = [
            types.SampledSequence(
                stop_reason=self.reasons[i],  # type: ignore[arg-type]
                sequence_id=f"local-{run}-{i}",
                tokens_np=np.asarray(self.tokens[i], dtype=np.int32),
                logprobs_np=np.asarray(self.logprobs[i], dtype=np.float32),
                topk_logprobs_np=(
                    TopkLogprobs(np.stack(self.topk_ids[i]), np.stack(self.topk_lps[i]))
                    if self.topk_sample_logprobs
                    else None
                ),
            )
            for i in range(self.num_samples)
        ]
        topk = TopkLogprobs(*self.prompt_topk) if self.prompt_topk is not None else None
        return types.SampleResponse(sequences=sequences, prompt_logprobs_np=self.prompt_lps, topk_prompt_logprobs_np=topk)


# -- decoding -------------------------------------------------------------------------------------


@dataclass
class _Row:
    request: SampleRequest
    sample: int  # index among the request's samples
    pad: int  # left padding of this row in the cache
    position: int  # position id of the row's next token


class Decoder:
    """Rows of running requests sharing one KV cache; `step` advances all of them."""

    def __init__(self, model: Any, precision: Precision, tokenizer: Tokenizer) -> None:
        self.model = model
        self.precision = precision
        self.tokenizer = tokenizer
        self.calls = ModelCalls.of(model)
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.next_tokens: list[int] = []

    @property
    def active(self) -> bool:
        return bool(self.rows)

    def _forward(self, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad(), self.precision.autocast(self.model):
            return self.model(use_cache=True, **kwargs)

    def can_join(self, request: SampleRequest, max_rows: int) -> bool:
        return not self.rows or (self.cache is not None and len(self.rows) + request.num_samples <= max_rows)

    def admit(self, request: SampleRequest) -> None:
        """Prefill `request` alone, draw its first tokens, and add its running
        samples to the batch. A request whose cache cannot be stacked runs to
        the end here, alone."""
        import torch

        fdt = self.precision.float_dtype()
        ids = torch.tensor([request.prompt], device=self.precision.device)
        request.gen = _generator(self.precision.device, request.params.seed)
        want_prompt = request.include_prompt_logprobs or request.topk_prompt_logprobs > 0
        extra = {"logits_to_keep": 1} if self.calls.logits_to_keep and not want_prompt else {}
        out = self._forward(input_ids=ids, **extra)
        if want_prompt:
            lp = out.logits[0, :-1].to(fdt).log_softmax(-1)
            if request.include_prompt_logprobs:
                chosen = lp.gather(-1, ids[0, 1:, None]).squeeze(-1)
                request.prompt_lps = np.concatenate([[np.nan], chosen.float().cpu().numpy()]).astype(np.float32)
            if request.topk_prompt_logprobs:
                k = min(request.topk_prompt_logprobs, lp.shape[-1])
                top_ids, top_lps = _topk(lp, k)
                # Position 0 has no context: the filler tinker uses for "nothing here".
                request.prompt_topk = (
                    np.concatenate([np.zeros((1, k), dtype=np.int32), top_ids]),
                    np.concatenate([np.full((1, k), MASK_LOGPROB, dtype=np.float32), top_lps]),
                )
        n = request.num_samples
        logits = out.logits[:, -1].to(fdt).expand(n, -1)
        keep, new = request.record(range(n), logits, self.tokenizer)
        if not keep:
            request.future.set_result(request.response())
            return
        cache = self.calls.cache_of(out)
        if n > 1:
            cache.batch_repeat_interleave(n)
        if len(keep) < n:
            cache.batch_select_indices(torch.tensor(keep, device=self.precision.device))
        rows = [_Row(request, s, 0, len(request.prompt)) for s in keep]
        if not _mergeable(cache):
            self._run_alone(rows, cache, new)
            return
        self._stack(rows, cache, new)

    def _stack(self, rows: list[_Row], cache: Any, tokens: list[int]) -> None:
        """Append rows (with their own cache) to the batch, left-padding whichever
        of the two caches is shorter."""
        import torch

        if not self.rows:
            self.rows, self.cache, self.next_tokens = rows, cache, list(tokens)
            return
        have, add = self.cache.get_seq_length(), cache.get_seq_length()
        width = max(have, add)
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            for name in ("keys", "values"):
                a, b = getattr(mine, name), getattr(theirs, name)
                a = torch.nn.functional.pad(a, (0, 0, width - have, 0))
                b = torch.nn.functional.pad(b, (0, 0, width - add, 0))
                setattr(mine, name, torch.cat([a, b], dim=0))
        for r in self.rows:
            r.pad += width - have
        for r in rows:
            r.pad += width - add
        self.rows += rows
        self.next_tokens += tokens

    def _run_alone(self, rows: list[_Row], cache: Any, tokens: list[int]) -> None:
        outer = (self.rows, self.cache, self.next_tokens)
        self.rows, self.cache, self.next_tokens = rows, cache, tokens
        try:
            while self.rows:
                self.step()
        finally:
            self.rows, self.cache, self.next_tokens = outer

    def step(self) -> None:
        """One token for every row; finished rows (and requests) leave."""
        import torch

        dev = self.precision.device
        width = self.cache.get_seq_length()
        ids = torch.tensor(self.next_tokens, device=dev)[:, None]
        pos = torch.tensor([r.position for r in self.rows], device=dev)[:, None]
        kwargs: dict[str, Any] = {"input_ids": ids, "position_ids": pos, self.calls.cache_arg: self.cache}
        if any(r.pad for r in self.rows):
            cols = torch.arange(width + 1, device=dev)[None, :]
            kwargs["attention_mask"] = (cols >= torch.tensor([r.pad for r in self.rows], device=dev)[:, None]).long()
        out = self._forward(**kwargs)
        self.cache = self.calls.cache_of(out)
        logits = out.logits[:, -1].to(self.precision.float_dtype())
        keep_rows: list[int] = []
        next_tokens: list[int] = []
        start = 0
        while start < len(self.rows):  # a request's rows are contiguous, in sample order
            req = self.rows[start].request
            end = start
            while end < len(self.rows) and self.rows[end].request is req:
                end += 1
            samples = [r.sample for r in self.rows[start:end]]
            keep, new = req.record(samples, logits[start:end], self.tokenizer)
            kept = set(keep)
            keep_rows += [i for i in range(start, end) if self.rows[i].sample in kept]
            next_tokens += new
            if not keep:
                req.future.set_result(req.response())
            start = end
        for r in self.rows:
            r.position += 1
        if len(keep_rows) < len(self.rows):
            self.rows = [self.rows[i] for i in keep_rows]
            if self.rows:
                self.cache.batch_select_indices(torch.tensor(keep_rows, device=dev))
                self._trim()
        self.next_tokens = next_tokens

    def _trim(self) -> None:
        """Drop cache columns that are padding in every remaining row."""
        cut = min(r.pad for r in self.rows)
        if cut == 0 or not _mergeable(self.cache):
            return
        for layer in self.cache.layers:
            layer.keys = layer.keys[..., cut:, :]
            layer.values = layer.values[..., cut:, :]
        for r in self.rows:
            r.pad -= cut

    def fail(self, error: BaseException) -> None:
        """An error mid-batch fails every request still in it."""
        for req in {id(r.request): r.request for r in self.rows}.values():
            if not req.future.done():
                req.future.set_exception(error)
        self.rows, self.cache, self.next_tokens = [], None, []

