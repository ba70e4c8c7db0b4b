"""Scoring a student's completion with a teacher that renders or tokenizes
differently: the completion is re-rendered for the teacher and the teacher's
logprobs are aligned back onto the student's tokens.

1. The student's tokens are parsed into the assistant message (its renderer's
   `parse_response`); the teacher's renderer writes the prompt and that
   message (`build_supervised_tokens`), and the teacher scores the message's
   tokens after its own generation prompt.
2. Both token sequences are laid on one axis: the reply's text (the message
   content, found in each side's decoded tokens), with each side's framing
   (a leading space, the end-of-message marker) squeezed into the unit before
   and after it. Where both sides have a token boundary at the same point,
   the sequences are cut; each piece is the same text under both tokenizers.
3. A piece's teacher logprob (the sum over its teacher tokens) is shared
   evenly by its student tokens. The sum over the whole completion is exact:
   the teacher's logprob of the reply, end marker included when the student
   wrote anything after the reply's text (a completion cut at max_tokens
   right after its text is scored without the teacher's end marker, but with
   all of a teacher token that runs from the text into the marker).

When the reply's text cannot be found in one side's tokens (a tokenizer that
cannot spell it, a renderer that rewrites content) the completion cannot be
aligned: `AlignmentError` says why.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cookbook_cli.errors import CookbookError
from cookbook_cli.types import TrainOnWhat, text_of

if TYPE_CHECKING:
    from cookbook_cli.conversations import Conversation
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.tokenizers import Tokenizer


class AlignmentError(CookbookError):
    """A completion whose teacher logprobs cannot be put on the student's tokens."""


def token_ends(tokenizer: Tokenizer, tokens: Sequence[int]) -> tuple[str, list[int]]:
    """The decoded text and the character offset at which each token ends."""
    text = tokenizer.decode(list(tokens))
    pieces = [len(tokenizer.decode([t])) for t in tokens]
    ends = list(np.cumsum(pieces)) if pieces else []
    if not ends or ends[-1] != len(text):
        # byte-level pieces that decode only together: decode each prefix
        ends = [len(tokenizer.decode(list(tokens[: i + 1]))) for i in range(len(tokens))]
    return text, [int(e) for e in ends]


def _axis(ends: Sequence[int], start: int, length: int, total: int) -> list[float]:
    """Token ends on the common axis: the content at [0, length], framing before
    it in [-1, 0) and after it in (length, length + 1]."""
    out = []
    for e in ends:
        if e <= start:
            out.append(-1.0 + (e / start if start else 1.0))
        elif e <= start + length:
            out.append(float(e - start))
        else:
            after = total - start - length
            out.append(length + (e - start - length) / after)
    return out


@dataclass
class Rerendered:
    """The teacher's tokens for a completion: the whole sequence to score and
    where the completion's tokens start in it."""

    tokens: list[int]
    start: int


class Aligner:
    """Re-renders completions for the teacher and aligns its logprobs back."""

    def __init__(self, student: Renderer, teacher: Renderer) -> None:
        self.student = student
        self.teacher = teacher

    def rerender(self, prompt: Conversation, completion: Sequence[int]) -> tuple[Rerendered, str]:
        """The teacher's sequence and the reply's text."""
        reply, _ = self.student.parse_response(list(completion))
        tools = prompt.tools or None
        try:
            head = self.teacher.build_generation_tokens(prompt.messages, tools=tools)
            full, weights = self.teacher.build_supervised_tokens([*prompt.messages, reply], TrainOnWhat.LAST_ASSISTANT_MESSAGE, tools)
        except CookbookError as e:
            raise AlignmentError(f"the teacher's renderer cannot write the reply: {e}") from None
        if full[: len(head)] != head:
            raise AlignmentError("the teacher's renderer writes the reply's prompt differently from its generation prompt")
        trained = [i for i, w in enumerate(weights) if w > 0 and i >= len(head)]
        end = trained[-1] + 1 if trained else len(head)
        return Rerendered(full[:end], len(head)), text_of(reply)

    def align(self, completion: Sequence[int], rerendered: Rerendered, teacher_logprobs: Sequence[float], content: str) -> np.ndarray:
        """The teacher's logprob per student completion token (see the module docstring).
        `teacher_logprobs[i]` is the teacher's logprob of `rerendered.tokens[start + i]`."""
        t_tokens = rerendered.tokens[rerendered.start :]
        t_lps = np.asarray(teacher_logprobs, dtype=np.float64).reshape(-1)
        if len(t_lps) != len(t_tokens):
            raise ValueError(f"{len(t_lps)} teacher logprobs for {len(t_tokens)} teacher tokens")
        s_text, s_ends = token_ends(self.student.tokenizer, completion)
        t_text, t_ends = token_ends(self.teacher.tokenizer, t_tokens)
        s_at, t_at = s_text.find(content), t_text.find(content)
        if s_at < 0 or t_at < 0:
            side = "student's" if s_at < 0 else "teacher's"
            raise AlignmentError(f"the reply's text is not in the {side} tokens (a tokenizer that cannot spell it?)")
        n = len(content)
        if s_at + n == len(s_text):
            # the student wrote nothing after the reply's text: leave out the teacher's end marker
            keep = [i for i, e in enumerate(t_ends) if i == 0 or t_ends[i - 1] < t_at + n]
            t_ends, t_lps = t_ends[: len(keep)], t_lps[: len(keep)]
            t_text = t_text[: t_ends[-1]] if t_ends else ""
        s_axis = _axis(s_ends, s_at, n, len(s_text))
        t_axis = _axis(t_ends, t_at, n, len(t_text))
        if s_at + n == len(s_text):
            # a teacher token that runs from the reply's text into the end marker counts as text
            t_axis = [min(x, float(n)) for x in t_axis]
        cuts = sorted(set(s_axis) & set(t_axis))
        if not cuts or cuts[-1] != s_axis[-1] or cuts[-1] != t_axis[-1]:
            raise AlignmentError("the student's and the teacher's tokens do not end at the same text")
        span_of = lambda x: bisect.bisect_left(cuts, x)  # noqa: E731 - index of the piece a token ends in
        teacher_sum = np.zeros(len(cuts))
        student_count = np.zeros(len(cuts))
        for x, lp in zip(t_axis, t_lps):
            teacher_sum[span_of(x)] += lp
        s_span = [span_of(x) for x in s_axis]
        for k in s_span:
            student_count[k] += 1
        return np.asarray([teacher_sum[k] / student_count[k] for k in s_span], dtype=np.float64)
