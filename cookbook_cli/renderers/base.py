"""The Renderer contract, implemented once over a few format hooks.

A format says how each message is written (`render_conversation`: a header,
trained only with `all_tokens`, a body: the message and its end marker, and
an optional trailer after the end marker, weighted like the header), what
comes before the first message (`bos_text`, `preamble`), how the next message
opens (`generation_header`), what stops sampling and how a response parses.
The base class turns that into token ids and weights.

Each piece is encoded separately, so the tokens of a generation prompt are
always a prefix of the tokens of the conversation that continues it: what the
model is trained on is what it sees when sampling.

A second, optional set of hooks (`template_*`) states how the renderer relates
to the model's own Hugging Face chat template: how to call the template so it
means the same conversation, and which documented differences (transformations
of the template side, `template_differences`) the comparison applies before it
requires equal tokens. `cookbook renderers check` and the parity tests use them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers.termination import Termination, split_at_stop
from cookbook_cli.renderers.thinking import ThinkingTags
from cookbook_cli.renderers.tool_calls import ToolCallFormat, check_tools_supported
from cookbook_cli.types import Message, ToolSpec, TrainOnWhat, make_content, thinking_of

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.renderers.differences import TemplateDifference

    from cookbook_cli.tokenizers import Tokenizer

_CACHE_MAX_CHARS = 64  # headers and markers repeat; cache their encodings


@dataclass(frozen=True)
class RenderedMessage:
    """One message as text. `header` opens it (e.g. the role marker), `body` is
    the message and its end marker, `trailer` is text the format writes after
    the end marker (e.g. Qwen's newline after `<|im_end|>`). Header and trailer
    are trained only with `all_tokens`; the body gets the message's weight."""

    header: str
    body: str
    trailer: str = ""


class Renderer(ABC):
    """Base of every chat format. Subclasses implement the hooks below."""

    name: str = ""  # the registry name, set by get_renderer; used for pickling
    supports_tools: bool = False
    supports_thinking: bool = False
    #: How chat templates of this family expect tool-call arguments: "dict" or "string".
    template_tool_arguments: str = "dict"
    #: Extra variables a family's chat template needs to render as this renderer does.
    template_kwargs: dict[str, Any] = {}
    #: The message field the family's chat template reads thinking from
    #: ("reasoning_content", the Hugging Face convention; gpt-oss reads "thinking").
    template_thinking_field: str = "reasoning_content"
    #: What this renderer deliberately writes differently from the template, each
    #: as a transformation of the template side (see `renderers.differences`);
    #: every one should be listed in the renderer's docstring.
    template_differences: tuple[TemplateDifference, ...] = ()

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._encode_cache: dict[str, list[int]] = {}

    # -- format hooks ---------------------------------------------------------------
    def bos_text(self) -> str:
        """Written once at the very start of every sequence."""
        return ""

    def preamble(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        """Text after the BOS and before the first message that belongs to no
        message (e.g. a system block the format always writes, or tool
        declarations when there is no system message). Trained only with `all_tokens`."""
        return ""

    def check_messages(self, messages: list[Message], tools: list[ToolSpec] | None) -> None:
        """Refuse what the format cannot express. The default refuses tools
        (unless `supports_tools`) and thinking (unless `supports_thinking`)."""
        check_tools_supported(self.name or type(self).__name__, self.supports_tools, tools, messages)
        check_tool_results_follow_calls(messages)
        for i, m in enumerate(messages):
            if thinking_of(m) is None:
                continue
            if not self.supports_thinking:
                raise CookbookError(
                    f"renderer {self.name or type(self).__name__!r} has no thinking format but message {i} has "
                    "thinking content; remove it or use a renderer for a reasoning model"
                )
            if m["role"] != "assistant":
                raise CookbookError(
                    f"message {i} ({m['role']}) has thinking content; only assistant messages can think"
                )

    @abstractmethod
    def render_conversation(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        """One RenderedMessage per message, in order."""

    def render_history(self, messages: list[Message], tools: list[ToolSpec] | None) -> list[RenderedMessage]:
        """The messages as they are written before a generation prompt. The
        same as `render_conversation` unless the format writes a conversation's
        final message differently when it is history (gpt-oss)."""
        return self.render_conversation(messages, tools)

    @abstractmethod
    def generation_header(self, messages: list[Message], role: str, tools: list[ToolSpec] | None) -> str:
        """Text that opens a new message of `role` after `messages`."""

    @abstractmethod
    def stop_token_ids(self) -> list[int]:
        """Tokens that end an assistant message."""

    def eos_token_ids(self) -> list[int]:
        """End-of-text tokens that are not the stop token (a sampled EOS ends the response too)."""
        return []

    def get_stop_sequences(self) -> list[int] | list[str]:
        return self.stop_token_ids()

    @abstractmethod
    def parse_response(self, tokens: list[int]) -> tuple[Message, Termination]:
        """The assistant message in sampled `tokens` and how the response ended."""

    # -- the contract, implemented once ----------------------------------------------
    def segments(
        self,
        messages: list[Message],
        train_on_what: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
        tools: list[ToolSpec] | None = None,
    ) -> list[tuple[str, float]]:
        """(text, weight) pieces of a supervised example, before encoding."""
        if not messages:
            raise CookbookError("cannot build a supervised example from an empty conversation")
        self.check_messages(messages, tools)
        mode = TrainOnWhat.parse(train_on_what)
        trained = message_weights(messages, mode)
        all_tokens = 1.0 if mode is TrainOnWhat.ALL_TOKENS else 0.0
        out: list[tuple[str, float]] = []
        for text in (self.bos_text(), self.preamble(messages, tools)):
            if text:
                out.append((text, all_tokens))
        rendered_messages = self.render_conversation(messages, tools)
        if len(rendered_messages) != len(messages):
            raise AssertionError(f"{type(self).__name__}.render_conversation must return one RenderedMessage per message")
        for rendered, w in zip(rendered_messages, trained):
            if rendered.header:
                out.append((rendered.header, all_tokens))
            if rendered.body:
                out.append((rendered.body, w))
            if rendered.trailer:
                out.append((rendered.trailer, all_tokens))
        return out

    def generation_segments(
        self,
        messages: list[Message],
        role: str = "assistant",
        prefill: str | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> list[str]:
        self.check_messages(messages, tools)
        out = [t for t in (self.bos_text(), self.preamble(messages, tools)) if t]
        for rendered in self.render_history(messages, tools):
            out.extend(t for t in (rendered.header, rendered.body, rendered.trailer) if t)
        header = self.generation_header(messages, role, tools)
        if header:
            out.append(header)
        if prefill:
            out.append(prefill)
        return out

    def encode_segments(self, texts: list[str]) -> list[list[int]]:
        """Encode pieces independently; short repeated ones come from a cache."""
        cache = self._encode_cache
        missing = [t for t in texts if t not in cache]
        if missing and len(cache) > 50_000:
            cache.clear()
            missing = list(texts)
        if missing:
            uniq = list(dict.fromkeys(missing))
            for t, ids in zip(uniq, self.tokenizer.encode_batch(uniq)):
                if len(t) <= _CACHE_MAX_CHARS:
                    cache[t] = ids
                else:
                    cache.setdefault(t, ids)  # removed again below
        out = [cache[t] for t in texts]
        for t in missing:
            if len(t) > _CACHE_MAX_CHARS:
                cache.pop(t, None)
        return out

    def build_supervised_tokens(
        self,
        messages: list[Message],
        train_on_what: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
        tools: list[ToolSpec] | None = None,
    ) -> tuple[list[int], list[float]]:
        """Token ids and one weight per token (no tinker import: fast path)."""
        segs = self.segments(messages, train_on_what, tools)
        tokens: list[int] = []
        weights: list[float] = []
        for (_, w), ids in zip(segs, self.encode_segments([t for t, _ in segs])):
            tokens.extend(ids)
            weights.extend([w] * len(ids))
        return tokens, weights

    def build_supervised_example(
        self,
        messages: list[Message],
        train_on_what: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
        tools: list[ToolSpec] | None = None,
    ) -> tuple[tinker.types.ModelInput, list[float]]:
        """The conversation as a ModelInput and one training weight per token."""
        from tinker.types import ModelInput

        tokens, weights = self.build_supervised_tokens(messages, train_on_what, tools)
        return ModelInput.from_ints(tokens), weights

    def build_generation_tokens(
        self,
        messages: list[Message],
        role: str = "assistant",
        prefill: str | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> list[int]:
        segs = self.generation_segments(messages, role, prefill, tools)
        return [t for ids in self.encode_segments(segs) for t in ids]

    def build_generation_prompt(
        self,
        messages: list[Message],
        role: str = "assistant",
        prefill: str | None = None,
        tools: list[ToolSpec] | None = None,
    ) -> tinker.types.ModelInput:
        """The prompt that asks the model for the next message of `role`."""
        from tinker.types import ModelInput

        return ModelInput.from_ints(self.build_generation_tokens(messages, role, prefill, tools))

    # -- parity with the model's chat template (optional hooks) ------------------------
    def template_text(
        self,
        template: str,
        messages: list[Message],
        tools: list[ToolSpec] | None,
        *,
        add_generation_prompt: bool,
        special_tokens: dict[str, str] | None = None,
    ) -> str:
        """What the model's Jinja chat `template` writes for this conversation,
        called the way this renderer claims to reproduce it: tool-call
        arguments and thinking in the shape the family's template reads, plus
        `template_kwargs`. Override to adapt a documented, systematic difference
        (e.g. a system block the renderer deliberately omits)."""
        from cookbook_cli.renderers.chat_template import render_chat_template

        variables = {**(special_tokens or {}), **self.template_kwargs}
        return render_chat_template(
            template,
            messages,
            tools,
            add_generation_prompt=add_generation_prompt,
            tool_arguments=self.template_tool_arguments,
            thinking_field=self.template_thinking_field,
            **variables,
        )

    # -- helpers for subclasses ---------------------------------------------------------
    def split_response(self, tokens: list[int]) -> tuple[str, Termination]:
        """Decoded text before the stop token, and how the response ended."""
        body, term = split_at_stop(list(tokens), set(self.stop_token_ids()), set(self.eos_token_ids()))
        return self.tokenizer.decode(body), term

    def parse_text(
        self,
        text: str,
        thinking_tags: ThinkingTags | None = None,
        tool_format: ToolCallFormat | None = None,
    ) -> Message:
        """The assistant message in decoded response `text`: a thinking block
        split off with `thinking_tags` (whether or not the prompt already opened
        it), then tool calls parsed with `tool_format`, unparseable ones kept
        with their error. An empty thinking block counts as no thinking."""
        thinking: str | None = None
        if thinking_tags is not None:
            thinking, text = thinking_tags.split(text, opened=None)
            if thinking is not None and not thinking.strip():
                thinking = None
        message: Message = {"role": "assistant", "content": text}
        if tool_format is not None:
            parsed = tool_format.parse(text)
            text = parsed.text
            if parsed.calls:
                message["tool_calls"] = parsed.calls
            if parsed.unparsed:
                message["unparsed_tool_calls"] = parsed.unparsed
        message["content"] = make_content(text, thinking)
        return message

    def __reduce__(self) -> tuple[Any, tuple[str, Any]]:
        # Pickle by registry name: worker processes resolve the same plugin.
        if not self.name:
            raise TypeError("only renderers made by get_renderer(name, ...) can be pickled")
        from cookbook_cli.renderers import get_renderer

        return (get_renderer, (self.name, self.tokenizer))


class StopTokenRenderer(Renderer):
    """A format whose messages end with one stop token (`stop_token`); the
    tokenizer's `end_of_text` token, when it has one, also ends a response."""

    stop_token: str = ""
    end_of_text: str | None = None

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self._stop = tokenizer.require_id(self.stop_token)
        self._end_of_text = tokenizer.token_to_id(self.end_of_text) if self.end_of_text else None

    def stop_token_ids(self) -> list[int]:
        return [self._stop]

    def eos_token_ids(self) -> list[int]:
        return [self._end_of_text] if self._end_of_text is not None else []


def message_weights(messages: list[Message], mode: TrainOnWhat) -> list[float]:
    """Weight of each message's body under `mode`."""
    n = len(messages)
    roles = [m["role"] for m in messages]
    if mode is TrainOnWhat.ALL_TOKENS or mode is TrainOnWhat.ALL_MESSAGES:
        return [1.0] * n
    if mode is TrainOnWhat.ALL_ASSISTANT_MESSAGES:
        return [1.0 if r == "assistant" else 0.0 for r in roles]
    if mode is TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES:
        return [1.0 if r in ("user", "system") else 0.0 for r in roles]
    if mode is TrainOnWhat.CUSTOMIZED:
        return [1.0 if m.get("trainable", False) else 0.0 for m in messages]
    assistant = [i for i, r in enumerate(roles) if r == "assistant"]
    if not assistant:
        raise CookbookError(f"train_on_what={mode.value} needs an assistant message, and the conversation has none")
    if mode is TrainOnWhat.LAST_ASSISTANT_MESSAGE:
        return [1.0 if i == assistant[-1] else 0.0 for i in range(n)]
    # LAST_ASSISTANT_TURN: every assistant message after the last user message
    last_user = max((i for i, r in enumerate(roles) if r == "user"), default=-1)
    return [1.0 if r == "assistant" and i > last_user else 0.0 for i, r in enumerate(roles)]


def check_tool_results_follow_calls(messages: list[Message]) -> None:
    """Every tool result answers a call: it follows an assistant message with
    tool calls (or another result), and its `tool_call_id`, when both carry
    ids, is one of that message's calls. Chat templates render an orphan result
    as if it answered something (or raise, as gpt-oss's does)."""
    calls: list[Any] | None = None  # the latest assistant message's tool calls, while results may follow
    for i, m in enumerate(messages):
        if m["role"] != "tool":
            calls = list(m.get("tool_calls") or []) if m["role"] == "assistant" else None
            calls = calls or None
            continue
        if calls is None:
            raise CookbookError(
                f"message {i} is a tool result with no assistant tool call before it; put the assistant message "
                "that calls the tool first, or drop the result"
            )
        ids = [c.id for c in calls if getattr(c, "id", None)]
        wanted = m.get("tool_call_id")
        if wanted and ids and wanted not in ids:
            raise CookbookError(
                f"message {i} is a tool result for tool_call_id {wanted!r}, which the assistant message before it "
                f"does not call (its calls: {', '.join(ids)})"
            )
