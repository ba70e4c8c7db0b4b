"""Completers: a policy as the code that uses it sees it.

- A `TokenCompleter` samples `num_samples` completions of a ModelInput under a
  stop condition and returns their tokens with per-token logprobs. RL rollouts
  use it; `SamplingClientCompleter` is the one over an engine's SamplingClient
  (Tinker's or the local one), and tests can pass any object with the same
  `__call__`.
- A `MessageCompleter` works in messages: it renders a conversation into a
  generation prompt with a renderer, samples through a token completer and
  parses each response back into an assistant message (tool calls through the
  renderer's tool-call format). It returns a `Completion`: the message *with*
  how it ended (stop, eos, length, malformed) and the sampled tokens with
  their logprobs, so a caller can tell a clean answer from a truncated one and
  score it. `cookbook sample`, `chat`, `eval` and the envs use it.

Nothing heavy is imported at module level.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.types import Message, ToolSpec

StopCondition: TypeAlias = "list[int] | list[str]"
"""Stop token ids or stop strings for the next sampling call."""


@dataclass(frozen=True)
class TokensWithLogprobs:
    """One sampled completion: its tokens, their logprobs under the sampler, and why it stopped."""

    tokens: list[int]
    logprobs: list[float]
    stop_reason: str = "stop"  # "stop" (stop sequence / EOS) or "length" (max_tokens)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.logprobs):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.logprobs)} logprobs")


class TokenCompleter(Protocol):
    async def __call__(
        self, model_input: tinker.types.ModelInput, stop: StopCondition, num_samples: int = 1
    ) -> list[TokensWithLogprobs]: ...


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample: the knobs of `tinker.types.SamplingParams` a user sets."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: no top-k cut
    seed: int | None = None  # with a seed, each call draws its own seed from it: samples repeat

    def check(self) -> None:
        from cookbook_cli.errors import CookbookError

        if self.max_tokens < 1:
            raise CookbookError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise CookbookError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise CookbookError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k == 0 or self.top_k < -1:
            raise CookbookError(f"top_k must be -1 (off) or at least 1, got {self.top_k}")


class SamplingClientCompleter:
    """Samples through an engine's SamplingClient with fixed sampling settings."""

    def __init__(
        self,
        sampling_client: SamplingClient,
        max_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = -1,
        seed: int | None = None,
    ) -> None:
        self.sampling_client = sampling_client
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        # With a seed, each call gets its own seed drawn from it, so a run's samples repeat.
        self._seeds = random.Random(seed) if seed is not None else None

    @classmethod
    def from_settings(cls, sampling_client: SamplingClient, settings: SamplingSettings) -> SamplingClientCompleter:
        settings.check()
        return cls(sampling_client, settings.max_tokens, settings.temperature, settings.top_p, settings.top_k, settings.seed)

    async def __call__(
        self, model_input: tinker.types.ModelInput, stop: StopCondition, num_samples: int = 1
    ) -> list[TokensWithLogprobs]:
        from tinker.types import SamplingParams

        params = SamplingParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop=list(stop),
            seed=self._seeds.getrandbits(31) if self._seeds is not None else None,
        )
        response = await self.sampling_client.sample_async(model_input, num_samples, params)
        out = []
        for seq in response.sequences:
            logprobs = seq.logprobs
            if logprobs is None:
                raise RuntimeError("the sampling client returned no logprobs; RL needs them")
            if any(not math.isfinite(lp) for lp in logprobs):
                raise RuntimeError("the sampling client returned a non-finite logprob")
            out.append(TokensWithLogprobs(list(seq.tokens), list(logprobs), str(seq.stop_reason)))
        if len(out) != num_samples:
            raise RuntimeError(f"asked the sampling client for {num_samples} samples, got {len(out)}")
        return out


# -- messages ---------------------------------------------------------------------------------

STOP, EOS, LENGTH, MALFORMED = "stop", "eos", "length", "malformed"
TERMINATIONS = (STOP, EOS, LENGTH, MALFORMED)


@dataclass(frozen=True)
class Completion:
    """One sampled assistant message and how it came about.

    `termination`: `stop` (the renderer's stop sequence), `eos` (an end-of-text
    token), `length` (max_tokens ran out before either) or `malformed` (the
    response did not end the way the format requires, e.g. a second stop
    sequence). `tokens`/`logprobs`: what was sampled, with the sampler's
    logprob of each token."""

    message: Message
    termination: str
    tokens: list[int]
    logprobs: list[float]

    @property
    def ok(self) -> bool:
        """The response ended cleanly (stop or eos)."""
        return self.termination in (STOP, EOS)

    @property
    def logprob(self) -> float:
        """The sampler's log-probability of the whole response."""
        return float(sum(self.logprobs))


def termination_of(parsed: str, stop_reason: str) -> str:
    """`Completion.termination` from the renderer's parse result (a
    `Termination` value) and the engine's stop reason."""
    if parsed in (STOP, EOS):
        return parsed
    if parsed == "no_stop" and stop_reason == "length":
        return LENGTH
    return MALFORMED


class MessageCompleter(Protocol):
    async def __call__(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, num_samples: int = 1
    ) -> list[Completion]: ...


class RendererMessageCompleter:
    """Messages in, parsed assistant messages out, over a renderer and a token completer."""

    def __init__(self, renderer: Renderer, completer: TokenCompleter) -> None:
        self.renderer = renderer
        self.completer = completer

    @classmethod
    def over(cls, renderer: Renderer, sampling_client: SamplingClient, settings: SamplingSettings) -> RendererMessageCompleter:
        return cls(renderer, SamplingClientCompleter.from_settings(sampling_client, settings))

    def prompt(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> tinker.types.ModelInput:
        return self.renderer.build_generation_prompt(messages, tools=tools)

    async def __call__(
        self, messages: list[Message], tools: list[ToolSpec] | None = None, num_samples: int = 1
    ) -> list[Completion]:
        prompt = self.prompt(messages, tools)
        samples = await self.completer(prompt, self.renderer.get_stop_sequences(), num_samples)
        return [self.parse(s) for s in samples]

    def parse(self, sample: TokensWithLogprobs) -> Completion:
        message, termination = self.renderer.parse_response(list(sample.tokens))
        return Completion(message, termination_of(termination.value, sample.stop_reason), list(sample.tokens), list(sample.logprobs))
