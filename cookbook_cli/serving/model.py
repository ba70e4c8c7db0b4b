"""The served model: requests in, sampled replies out, through the run's renderer.

A chat request's messages (and tools) are rendered with the renderer the run
trained with (`build_generation_prompt`), so the model sees exactly the tokens
it was trained on; each sampled reply is parsed back by the same renderer
(thinking into `reasoning_content`, tool calls into `tool_calls`). A
completion request's prompt is the raw text (or token ids), sampled until an
end-of-text token.

Seeds: a request with `seed=S` draws what `cookbook sample --seed S` draws for a
file holding that one conversation, with the same settings.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.serving.errors import ApiError, bad_request

if TYPE_CHECKING:
    from tinker import types

    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.serving.admission import Admission
    from cookbook_cli.serving.requests import ChatRequest, CompletionRequest, Sampling
    from cookbook_cli.tokenizers import Tokenizer
    from cookbook_cli.types import ToolCall


@dataclass
class Reply:
    """One sampled choice."""

    text: str
    tokens: list[int]
    logprobs: list[float]
    top_logprobs: list[list[tuple[int, float]]] | None
    finish_reason: str  # stop, length, tool_calls
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class Generation:
    replies: list[Reply]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(len(r.tokens) for r in self.replies)

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": self.prompt_tokens + self.completion_tokens}


def engine_seed(seed: int | None) -> int | None:
    """The sampler's seed for a request seed: the one `cookbook sample` gives a
    one-conversation file (its prompt 0, first call of its completer)."""
    from cookbook_cli.sampling import prompt_seed

    first = prompt_seed(seed, 0)
    return None if first is None else random.Random(first).getrandbits(31)


def first_stop(text: str, stops: tuple[str, ...]) -> tuple[int, int] | None:
    """(start, end) of the earliest stop string in `text`, if any."""
    hits = [(i, i + len(s)) for s in stops if (i := text.find(s)) >= 0]
    return min(hits) if hits else None


def cut_at_stop_strings(tokens: list[int], stops: tuple[str, ...], tokenizer: Tokenizer) -> tuple[int, str] | None:
    """(tokens up to the one that completes the first stop string, the text
    before that string), or None when no stop string occurs. The engine stops
    at the renderer's stop tokens; the request's own stop strings are applied here."""
    text = tokenizer.decode(tokens) if stops else ""
    found = first_stop(text, stops)
    if found is None:
        return None
    at, end = found
    for k in range(1, len(tokens) + 1):  # the shortest prefix whose text holds the stop string
        if len(tokenizer.decode(tokens[:k])) >= end:
            return k, text[:at]
    return len(tokens), text[:at]


class ServedModel:
    """One model behind the API: a renderer, a sampling client, a name."""

    def __init__(self, name: str, client: SamplingClient, renderer: Renderer, admission: Admission, owned_by: str = "cookbook") -> None:
        self.name = name
        self.client = client
        self.renderer = renderer
        self.tokenizer = renderer.tokenizer
        self.admission = admission
        self.owned_by = owned_by
        self.created = 0

    def check_model(self, requested: str) -> None:
        if requested != self.name:
            raise ApiError(404, f"the model {requested!r} does not exist; this server serves {self.name!r}", param="model", code="model_not_found")

    # -- chat ----------------------------------------------------------------------------
    def chat_prompt(self, request: ChatRequest) -> list[int]:
        """The generation prompt of the request's messages, as the run's renderer writes it."""
        if request.messages[-1]["role"] == "assistant":
            raise bad_request("the last message is the assistant's; end with a user (or tool) message for the model to answer", "messages")
        try:
            return self.renderer.build_generation_tokens(request.messages, tools=request.tools or None)
        except CookbookError as e:
            raise bad_request(str(e), "tools" if request.tools and "tool" in str(e) else "messages") from None

    async def chat(self, request: ChatRequest) -> Generation:
        self.check_model(request.sampling.model)
        prompt = self.chat_prompt(request)
        response = await self._sample(prompt, request.sampling, self.renderer.get_stop_sequences())
        return Generation([self._chat_reply(seq, request.sampling) for seq in response.sequences], len(prompt))

    def _chat_reply(self, seq: Any, sampling: Sampling) -> Reply:
        from cookbook_cli.types import text_of, thinking_of

        tokens, logprobs, top = list(seq.tokens), list(seq.logprobs or []), _top(seq, sampling)
        cut = cut_at_stop_strings(tokens, sampling.stop, self.tokenizer)
        if cut is not None:
            tokens, logprobs, top = tokens[: cut[0]], logprobs[: cut[0]], top[: cut[0]] if top is not None else None
        message, termination = self.renderer.parse_response(tokens)
        text = text_of(message)
        unparsed = message.get("unparsed_tool_calls") or []
        if unparsed:  # a call the renderer could not parse stays visible as text
            text += "".join(u.raw_text for u in unparsed)
        calls = [] if cut is not None else list(message.get("tool_calls") or [])
        if cut is not None:
            found = first_stop(text, sampling.stop)  # absent when the stop string ended inside the thinking
            text = text[: found[0]] if found else text
            reason = "stop"
        elif calls:
            reason = "tool_calls"
        elif termination.value in ("stop", "eos"):
            reason = "stop"
        else:
            reason = "length" if str(seq.stop_reason) == "length" else "stop"
        return Reply(text, tokens, logprobs, top, reason, thinking_of(message), calls)

    # -- completions --------------------------------------------------------------------
    def completion_prompt(self, request: CompletionRequest) -> list[int]:
        if isinstance(request.prompt, list):
            vocab = self.tokenizer.vocab_size
            if any(t < 0 or t >= vocab for t in request.prompt):
                raise bad_request(f"prompt token ids must lie in [0, {vocab})", "prompt")
            return list(request.prompt)
        bos = self.tokenizer.bos_token_id
        tokens = self.tokenizer.encode(request.prompt)
        # One BOS, as the renderer writes it for chat, unless the text brings its own.
        return [bos, *tokens] if bos is not None and (not tokens or tokens[0] != bos) else tokens

    async def complete(self, request: CompletionRequest) -> Generation:
        self.check_model(request.sampling.model)
        prompt = self.completion_prompt(request)
        response = await self._sample(prompt, request.sampling, None)
        replies = []
        for seq in response.sequences:
            tokens, logprobs, top = list(seq.tokens), list(seq.logprobs or []), _top(seq, request.sampling)
            cut = cut_at_stop_strings(tokens, request.sampling.stop, self.tokenizer)
            if cut is not None:
                replies.append(Reply(cut[1], tokens[: cut[0]], logprobs[: cut[0]], top[: cut[0]] if top is not None else None, "stop"))
                continue
            ended = str(seq.stop_reason) != "length"
            shown = tokens[:-1] if ended and tokens and tokens[-1] in self._end_ids() else tokens
            replies.append(Reply(self.tokenizer.decode(shown), tokens, logprobs, top, "stop" if ended else "length"))
        return Generation(replies, len(prompt))

    def _end_ids(self) -> set[int]:
        eos = self.tokenizer.eos_token_id
        return {*self.renderer.eos_token_ids(), *([eos] if eos is not None else [])}

    # -- sampling -----------------------------------------------------------------------
    async def _sample(self, prompt: list[int], sampling: Sampling, stop: list[int] | list[str] | None) -> types.SampleResponse:
        from tinker import types

        params = types.SamplingParams(
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            stop=stop,
            seed=engine_seed(sampling.seed),
        )
        topk = {"topk_sample_logprobs": sampling.top_logprobs} if sampling.top_logprobs else {}

        async def sample() -> types.SampleResponse:
            try:
                return await self.client.sample_async(types.ModelInput.from_ints(prompt), sampling.n, params, **topk)
            except CookbookError as e:  # the engine's own checks: a prompt past the context, ...
                code = "context_length_exceeded" if "context" in str(e) else None
                raise bad_request(str(e), "messages" if code else None, code) from None

        return await self.admission.run(sample())

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:24]}"


def _top(seq: Any, sampling: Sampling) -> list[list[tuple[int, float]]] | None:
    if not sampling.top_logprobs:
        return None
    return [[(int(t), float(lp)) for t, lp in row] for row in (seq.topk_logprobs or [])]
