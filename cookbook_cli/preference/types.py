"""Comparisons: a prompt conversation, two completions, and which one is preferred.

The field names follow tinker-cookbook (`prompt_conversation`, `completion_A`,
`completion_B`, label "A" / "B" / "Tie"), so its comparison files read as they
are. A tie says neither completion is preferred: it is never silently turned
into a preference (`chosen_and_rejected` refuses it; datasets skip and count it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cookbook_cli.errors import CookbookError
from cookbook_cli.types import Message, ToolSpec, message_to_json, text_of, thinking_of

Label = Literal["A", "B", "Tie"]
LABELS: tuple[Label, ...] = ("A", "B", "Tie")


@dataclass(frozen=True)
class Comparison:
    """A prompt and two candidate completions of it (each a list of messages:
    the assistant's reply, possibly with tool calls and their results)."""

    prompt_conversation: list[Message]
    completion_A: list[Message]
    completion_B: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)

    def swap(self) -> Comparison:
        return Comparison(self.prompt_conversation, self.completion_B, self.completion_A, self.tools)


@dataclass(frozen=True)
class LabeledComparison:
    comparison: Comparison
    label: Label
    #: where it was read from ("file.jsonl:7", "dataset[train] row 3"), for errors
    source: str | None = field(default=None, compare=False)

    @property
    def is_tie(self) -> bool:
        return self.label == "Tie"

    def skip_reason(self) -> str | None:
        return skip_reason(self)

    def swap(self) -> LabeledComparison:
        swapped: Label = {"A": "B", "B": "A", "Tie": "Tie"}[self.label]  # type: ignore[assignment]
        return LabeledComparison(self.comparison.swap(), swapped, self.source)

    def chosen_and_rejected(self) -> tuple[list[Message], list[Message]]:
        """(preferred completion, the other one). A tie has neither: refused."""
        c = self.comparison
        if self.label == "A":
            return c.completion_A, c.completion_B
        if self.label == "B":
            return c.completion_B, c.completion_A
        raise CookbookError(f"{self.source or 'comparison'}: label 'Tie' prefers neither completion; skip ties")

    def to_json(self) -> dict[str, Any]:
        """The tinker-cookbook line shape: {"comparison": {...}, "label": ...}."""
        c = self.comparison
        body: dict[str, Any] = {
            "prompt_conversation": [message_to_json(m) for m in c.prompt_conversation],
            "completion_A": [message_to_json(m) for m in c.completion_A],
            "completion_B": [message_to_json(m) for m in c.completion_B],
        }
        out: dict[str, Any] = {"comparison": body, "label": self.label}
        if c.tools:
            out["tools"] = [t.to_openai() for t in c.tools]
        return out


def parse_label(value: Any, where: str) -> Label:
    """"A", "B" or "Tie" (any case); anything else is an error naming the field."""
    if isinstance(value, str):
        for label in LABELS:
            if value.strip().lower() == label.lower():
                return label
    raise CookbookError(f"{where}: field 'label' must be \"A\", \"B\" or \"Tie\"; got {value!r}")


def is_empty_completion(messages: list[Message]) -> bool:
    """No text, no thinking and no tool call in any of the messages."""
    return not any(text_of(m).strip() or thinking_of(m) or m.get("tool_calls") for m in messages)


#: Why a comparison is not trained on (the keys of a dataset's `skipped` counts).
SKIP_TIE = "tie"
SKIP_EMPTY = "empty completion"
SKIP_IDENTICAL = "chosen equals rejected"


def skip_reason(comparison: LabeledComparison) -> str | None:
    """Why this comparison teaches nothing, or None when it is usable."""
    if comparison.is_tie:
        return SKIP_TIE
    c = comparison.comparison
    if is_empty_completion(c.completion_A) or is_empty_completion(c.completion_B):
        return SKIP_EMPTY
    if c.completion_A == c.completion_B:
        return SKIP_IDENTICAL
    return None
