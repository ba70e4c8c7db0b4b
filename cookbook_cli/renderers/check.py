"""Compare a renderer with a model's own chat template, token by token.

The engine behind `cookbook renderers check`, the parity tests of the renderer
plugins, and the pytest helper for plugin authors. For each conversation it
compares, with the renderer's tokenizer:

- every generation prompt the conversation contains (the messages before each
  assistant message, and the whole conversation when it does not end with an
  assistant message): `build_generation_tokens` against the template rendered
  with `add_generation_prompt=True`;
- the whole conversation as a training example: `build_supervised_tokens`
  against the template rendered with `add_generation_prompt=False`.

The template is called through `Renderer.template_text`, so each renderer says
how its family's template must be called (thinking field, argument shape,
kwargs). A comparison ends as
- `match`: the token sequences are equal;
- `documented`: they differ, and either the text is the same and only the
  renderer's piece-by-piece encoding explains it (the base class encodes a
  header apart from its body on purpose, so a generation prompt stays a token
  prefix of the conversation; the report names the boundary), or the
  renderer's `template_differences` that apply to the conversation, applied to
  the template side (`renderers.differences`), make the template's tokens equal
  to the renderer's (or the same text split only at piece boundaries). A
  documented training example that ends in an assistant message must still
  continue the template's own generation prompt for that message token for
  token when the renderer's prompt equals it (what the model is trained on
  follows what it is prompted with), or it is a mismatch;
- `mismatch`: they differ, with the first differing token and a few decoded
  tokens of context (against the template with the documented differences
  applied, when some apply);
- `skipped`: the renderer refuses the conversation (a CookbookError) or the
  template does (its own `raise_exception`); the reason is kept;
- `error`: the renderer raised anything else, the template failed to render
  for another reason, or a documented difference raised: a bug to fix.

A report is ok when nothing mismatched or failed and at least one comparison was made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.types import TrainOnWhat

if TYPE_CHECKING:
    from cookbook_cli.conversations import Conversation
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.tokenizers import Tokenizer

MATCH, DOCUMENTED, MISMATCH, SKIPPED, ERROR = "match", "documented", "mismatch", "skipped", "error"
GENERATION, SUPERVISED = "generation", "supervised"


@dataclass(frozen=True)
class TokenDifference:
    """Where two token sequences first differ, with decoded context."""

    index: int
    renderer_length: int
    template_length: int
    before: tuple[str, ...]  # decoded tokens just before `index` (shared by both)
    renderer_next: tuple[tuple[int, str], ...]  # (id, decoded) from `index` on, renderer side
    template_next: tuple[tuple[int, str], ...]

    def describe(self) -> str:
        def show(pieces: Sequence[tuple[int, str]]) -> str:
            return " ".join(f"{text!r}({tid})" for tid, text in pieces) if pieces else "(end of sequence)"

        lines = [
            f"first difference at token {self.index} "
            f"(renderer {self.renderer_length} tokens, template {self.template_length})",
            "  before:   " + (" ".join(repr(t) for t in self.before) or "(start of sequence)"),
            "  renderer: " + show(self.renderer_next),
            "  template: " + show(self.template_next),
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "renderer_length": self.renderer_length,
            "template_length": self.template_length,
            "before": list(self.before),
            "renderer": [[t, s] for t, s in self.renderer_next],
            "template": [[t, s] for t, s in self.template_next],
        }


def first_difference(
    renderer_tokens: Sequence[int], template_tokens: Sequence[int], tokenizer: Tokenizer, context: int = 4
) -> TokenDifference | None:
    """None when the sequences are equal; else the first differing position
    with `context` decoded tokens before it and after it on each side."""
    if list(renderer_tokens) == list(template_tokens):
        return None
    n = min(len(renderer_tokens), len(template_tokens))
    i = next((k for k in range(n) if renderer_tokens[k] != template_tokens[k]), n)

    def decode(t: int) -> str:
        return tokenizer.decode([t])

    return TokenDifference(
        index=i,
        renderer_length=len(renderer_tokens),
        template_length=len(template_tokens),
        before=tuple(decode(t) for t in template_tokens[max(0, i - context) : i]),
        renderer_next=tuple((t, decode(t)) for t in renderer_tokens[i : i + context]),
        template_next=tuple((t, decode(t)) for t in template_tokens[i : i + context]),
    )


@dataclass(frozen=True)
class Comparison:
    kind: str  # GENERATION or SUPERVISED
    messages: int  # how many messages were rendered (the prompt's length, for a generation prompt)
    status: str  # MATCH, DOCUMENTED, MISMATCH, SKIPPED or ERROR
    detail: str = ""  # the documented difference, the refusal, or what went wrong
    difference: TokenDifference | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "messages": self.messages, "status": self.status}
        if self.detail:
            out["detail"] = self.detail
        if self.difference is not None:
            out["difference"] = self.difference.to_json()
        return out


@dataclass
class ConversationResult:
    index: int
    name: str
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status in (MISMATCH, ERROR) for c in self.comparisons)

    def of_kind(self, kind: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.kind == kind]

    def summary(self) -> str:
        parts = []
        for kind in (GENERATION, SUPERVISED):
            cs = self.of_kind(kind)
            if not cs:
                continue
            counts = Counter(c.status for c in cs)
            if kind == GENERATION:
                text = f"generation {counts[MATCH]}/{len(cs)} match"
                extra = [f"{counts[s]} {s}" for s in (DOCUMENTED, MISMATCH, ERROR, SKIPPED) if counts[s]]
                parts.append(text + (f" ({', '.join(extra)})" if extra else ""))
            else:
                parts.append(f"supervised {cs[0].status}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "comparisons": [c.to_json() for c in self.comparisons]}


@dataclass
class CheckReport:
    renderer: str
    template_source: str
    results: list[ConversationResult] = field(default_factory=list)

    def counts(self, kind: str) -> Counter[str]:
        return Counter(c.status for r in self.results for c in r.of_kind(kind))

    def cases(self, status: str) -> set[str]:
        """Names of the conversations with at least one comparison of `status`."""
        return {r.name for r in self.results if any(c.status == status for c in r.comparisons)}

    @property
    def compared(self) -> int:
        return sum(n for kind in (GENERATION, SUPERVISED) for s, n in self.counts(kind).items() if s not in (SKIPPED, ERROR))

    @property
    def ok(self) -> bool:
        return self.compared > 0 and not any(r.failed for r in self.results)

    def format(self, verbose: bool = False) -> str:
        """Human-readable report: one line per conversation, details for every
        mismatch (and, with `verbose`, for documented differences and skips)."""
        lines = [f"renderer {self.renderer!r} against {self.template_source}"]
        for r in self.results:
            mark = "FAIL" if r.failed else "ok  "
            lines.append(f"{mark} {r.index:>3} {r.name:<40} {r.summary()}")
            for c in r.comparisons:
                show = c.status in (MISMATCH, ERROR) or (verbose and c.status in (DOCUMENTED, SKIPPED))
                if not show:
                    continue
                where = f"{c.kind} prompt after {c.messages} message(s)" if c.kind == GENERATION else "training example"
                lines.append(f"       {c.status}: {where}" + (f": {c.detail}" if c.detail else ""))
                if c.difference is not None and c.status == MISMATCH:
                    lines.extend("       " + line for line in c.difference.describe().splitlines())
        for kind in (GENERATION, SUPERVISED):
            counts = self.counts(kind)
            total = sum(counts.values())
            label = "generation prompts" if kind == GENERATION else "training examples "
            lines.append(
                f"{label}: {counts[MATCH]}/{total} match, {counts[DOCUMENTED]} documented difference(s), "
                f"{counts[MISMATCH]} mismatch(es), {counts[SKIPPED]} skipped"
                + (f", {counts[ERROR]} error(s)" if counts[ERROR] else "")
            )
        if self.compared == 0:
            lines.append("nothing was compared: every conversation was refused")
        lines.append("OK" if self.ok else "FAILED")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "renderer": self.renderer,
            "template": self.template_source,
            "ok": self.ok,
            "counts": {kind: dict(self.counts(kind)) for kind in (GENERATION, SUPERVISED)},
            "conversations": [r.to_json() for r in self.results],
        }

    def assert_ok(self) -> None:
        """Raise AssertionError with the formatted report unless ok (for tests)."""
        if not self.ok:
            raise AssertionError(self.format(verbose=True))


def generation_prompt_lengths(messages: Sequence[Any]) -> list[int]:
    """Lengths of the prompts a conversation contains: the messages before each
    assistant message, and the whole conversation unless it ends with one."""
    lengths = [i for i in range(1, len(messages)) if messages[i]["role"] == "assistant"]
    if messages and messages[-1]["role"] != "assistant":
        lengths.append(len(messages))
    return lengths


def check_renderer(
    renderer: Renderer,
    conversations: Sequence[Conversation],
    template: str | None = None,
    *,
    names: Sequence[str] | None = None,
    template_source: str = "",
) -> CheckReport:
    """Compare `renderer` with `template` (default: its tokenizer's own chat
    template) on `conversations`, encoding both with the renderer's tokenizer.
    A template that does not parse is a CookbookError (one line, naming it)
    before anything is compared."""
    from cookbook_cli.renderers.chat_template import compile_template, template_special_tokens, tokenizer_chat_template

    tokenizer = renderer.tokenizer
    if template is None:
        template = tokenizer_chat_template(tokenizer)
        template_source = template_source or f"the chat template of {tokenizer.source}"
        if template is None:
            raise CookbookError(
                f"tokenizer {tokenizer.source!r} has no chat template (chat_template.jinja or tokenizer_config.json's "
                "chat_template beside tokenizer.json); pass one with --template FILE"
            )
    template_source = template_source or "the given chat template"
    try:
        compile_template(template)
    except CookbookError as e:
        raise CookbookError(f"{template_source}: {e}") from None
    if callable(getattr(renderer, "template_difference", None)):
        raise CookbookError(
            f"renderer {renderer.name or type(renderer).__name__!r} defines template_difference(), which is no longer "
            "read: declare its differences as transformations in `template_differences` (see docs/renderers.md)"
        )
    special = template_special_tokens(tokenizer)
    report = CheckReport(renderer.name or type(renderer).__name__, template_source)
    for index, conv in enumerate(conversations):
        name = names[index] if names is not None and index < len(names) else f"conversation {index}"
        result = ConversationResult(index, name)
        tools = conv.tools or None
        prompts: dict[int, _Outcome] = {}
        for n in generation_prompt_lengths(conv.messages):
            prompts[n] = _compare(renderer, template, special, conv.messages[:n], tools, generation=True)
            result.comparisons.append(prompts[n].comparison)
        outcome = _compare(renderer, template, special, conv.messages, tools, generation=False)
        comparison = outcome.comparison
        if comparison.status == DOCUMENTED and conv.messages[-1]["role"] == "assistant":
            comparison = _check_continues_prompt(outcome, prompts.get(len(conv.messages) - 1), renderer.tokenizer)
        result.comparisons.append(comparison)
        report.results.append(result)
    return report


@dataclass(frozen=True)
class _Outcome:
    comparison: Comparison
    ours: list[int] | None = None
    # the template side's tokens (documented differences applied) when the renderer's equal them
    exact: list[int] | None = None


def _compare(
    renderer: Renderer,
    template: str,
    special: dict[str, str],
    messages: list[Any],
    tools: Any,
    *,
    generation: bool,
) -> _Outcome:
    """One comparison: the renderer's tokens against the template's, then,
    when they differ, against the template with the renderer's documented
    differences applied."""
    from cookbook_cli.renderers.chat_template import TemplateRefused
    from cookbook_cli.renderers.differences import TemplateDifferenceError, apply_differences

    kind, n = (GENERATION if generation else SUPERVISED), len(messages)
    tok = renderer.tokenizer
    try:
        if generation:
            ours = renderer.build_generation_tokens(messages, tools=tools)
        else:
            ours, _ = renderer.build_supervised_tokens(messages, TrainOnWhat.ALL_TOKENS, tools)
    except CookbookError as e:
        return _Outcome(Comparison(kind, n, SKIPPED, f"renderer refuses: {e}"))
    except Exception as e:  # noqa: BLE001 - a renderer bug is a finding of the check, not a crash
        return _Outcome(Comparison(kind, n, ERROR, f"the renderer raised {type(e).__name__}: {e}"))

    def render(m: list[Any], t: Any) -> str:
        return renderer.template_text(template, m, t, add_generation_prompt=generation, special_tokens=special)

    try:
        theirs = tok.encode(render(messages, tools))
    except TemplateRefused as e:
        return _Outcome(Comparison(kind, n, SKIPPED, f"template refuses: {e}"))
    except Exception as e:  # noqa: BLE001
        return _Outcome(Comparison(kind, n, ERROR, f"the template could not be rendered: {_error(e)}"))
    if ours == theirs:
        return _Outcome(Comparison(kind, n, MATCH), ours, theirs)
    try:
        differences = [d for d in renderer.template_differences if d.applies(messages, tools, generation=generation)]
    except Exception as e:  # noqa: BLE001
        return _Outcome(Comparison(kind, n, ERROR, f"a documented difference raised {_error(e)}"))
    if not differences:
        split = split_encoding_difference(renderer, messages, tools, theirs, generation=generation)
        if split:
            return _Outcome(Comparison(kind, n, DOCUMENTED, split, first_difference(ours, theirs, tok)), ours)
        return _Outcome(Comparison(kind, n, MISMATCH, "tokens differ", first_difference(ours, theirs, tok)), ours)
    described = "; ".join(d.description or type(d).__name__ for d in differences)
    try:
        expected = tok.encode(apply_differences(differences, render, messages, tools))
    except (TemplateDifferenceError, TemplateRefused) as e:
        why = f"documented difference ({described}) does not describe the template's text: {e}"
        return _Outcome(Comparison(kind, n, MISMATCH, why, first_difference(ours, theirs, tok)), ours)
    except Exception as e:  # noqa: BLE001
        return _Outcome(Comparison(kind, n, ERROR, f"applying a documented difference raised {_error(e)}"))
    diff = first_difference(ours, expected, tok)
    if diff is None:
        return _Outcome(Comparison(kind, n, DOCUMENTED, described, first_difference(ours, theirs, tok)), ours, expected)
    split = split_encoding_difference(renderer, messages, tools, expected, generation=generation)
    if split:
        return _Outcome(Comparison(kind, n, DOCUMENTED, f"{described}; {split}", diff), ours)
    why = f"tokens differ from the template's even with the documented difference(s) applied ({described})"
    return _Outcome(Comparison(kind, n, MISMATCH, why, diff), ours)


def _error(e: Exception) -> str:
    return str(e) if isinstance(e, CookbookError) else f"{type(e).__name__}: {e}"


def split_encoding_difference(
    renderer: Renderer, messages: list[Any], tools: Any, template_tokens: list[int], *, generation: bool
) -> str | None:
    """When the renderer writes exactly the template's text and the tokens differ
    only because the renderer encodes its pieces (header, body, ...) one by one,
    as the base class does on purpose so a generation prompt stays a token
    prefix of the conversation: a description of the first boundary the
    tokenizer would have merged. None otherwise."""
    tok = renderer.tokenizer
    if generation:
        pieces = renderer.generation_segments(messages, tools=tools)
    else:
        pieces = [t for t, _ in renderer.segments(messages, TrainOnWhat.ALL_TOKENS, tools)]
    if tok.encode("".join(pieces)) != template_tokens:
        return None
    for a, b in zip(pieces, pieces[1:]):
        if tok.encode(a + b) != tok.encode(a) + tok.encode(b):
            return (
                f"same text; the tokenizer merges across the boundary {a[-16:]!r} | {b[:16]!r}, "
                "which the renderer encodes as two pieces (so a generation prompt stays a token prefix)"
            )
    return "same text; tokens differ only where the renderer encodes its pieces separately"


def _check_continues_prompt(outcome: _Outcome, prompt: _Outcome | None, tokenizer: Tokenizer) -> Comparison:
    """A documented training example must still start with the template's
    generation prompt for its last message, when the renderer's prompt equals
    that one token for token: what the model is trained on follows what it is
    prompted with."""
    comparison = outcome.comparison
    if prompt is None or prompt.exact is None or outcome.ours is None:
        return comparison
    prompt_tokens, ours = prompt.exact, outcome.ours
    if ours[: len(prompt_tokens)] == prompt_tokens:
        return Comparison(
            comparison.kind,
            comparison.messages,
            DOCUMENTED,
            comparison.detail + "; the example continues the template's generation prompt token for token",
            comparison.difference,
        )
    diff = first_difference(ours[: len(prompt_tokens)], prompt_tokens, tokenizer)
    return Comparison(
        comparison.kind,
        comparison.messages,
        MISMATCH,
        f"documented difference ({comparison.detail}), but the example does not continue the template's generation prompt",
        diff,
    )


# -- round trips ------------------------------------------------------------------------
def round_trip(renderer: Renderer, messages: list[Any], tools: Any = None) -> tuple[Any, Any]:
    """Parse back the trained tokens of a conversation's last assistant message
    (`build_supervised_example` with `last_assistant_message`): what a model trained on the example
    would sample, read the way the renderer reads a response. Returns
    (message, termination)."""
    model_input, weights = renderer.build_supervised_example(messages, TrainOnWhat.LAST_ASSISTANT_MESSAGE, tools)
    return renderer.parse_response([t for t, w in zip(model_input.to_ints(), weights) if w > 0])


def message_essentials(message: Any) -> dict[str, Any]:
    """What a round trip must preserve: role, text, thinking, tool calls (name
    and arguments; ids are not part of any format) and unparsed calls."""
    from cookbook_cli.types import text_of, thinking_of

    return {
        "role": message["role"],
        "text": text_of(message),
        "thinking": thinking_of(message),
        "tool_calls": [(c.name, c.arguments) for c in message.get("tool_calls") or []],
        "unparsed_tool_calls": [u.raw_text for u in message.get("unparsed_tool_calls") or []],
    }
