"""HTML transcripts of on-policy distillation: every completion token coloured
by its per-token reverse KL, s_t - q_t (student minus teacher logprob).

Red: the student was surer of the token than the teacher (s > q; the
advantage pushes it down); blue: the teacher liked it more (s < q). The
colour saturates at |s - q| = 4 nats; hovering a token shows both logprobs.
One file per step, `transcripts/step_000012.html`, like `train rl`'s.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cookbook_cli.rl.transcripts import _STYLE

if TYPE_CHECKING:
    from cookbook_cli.tokenizers import Tokenizer

_KL_STYLE = """
.tok { white-space: pre-wrap; border-radius: 2px; }
.legend span { padding: 0 0.4em; }
"""
SATURATION = 4.0


@dataclass
class Completion:
    """One sampled completion and its grades."""

    teacher: str
    prompt: list[int]  # the observation tokens before the completion
    tokens: list[int]
    student_logprobs: list[float]
    teacher_logprobs: list[float]
    staleness: int = 0


def _colour(kl: float) -> str:
    a = min(abs(kl) / SATURATION, 1.0)
    return f"rgba(220, 50, 40, {a:.2f})" if kl > 0 else f"rgba(40, 90, 220, {a:.2f})"


def render_completions(items: Sequence[Completion], tokenizer: Tokenizer, title: str) -> str:
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}{_KL_STYLE}</style>",
        f"<h1>{html.escape(title)}</h1>",
        "<p class='legend meta'>per-token reverse KL s - q: "
        f"<span style='background:{_colour(SATURATION)}'>student surer (+{SATURATION:g})</span> "
        f"<span style='background:{_colour(-SATURATION)}'>teacher surer (-{SATURATION:g})</span></p>",
    ]
    for i, c in enumerate(items):
        kls = [s - q for s, q in zip(c.student_logprobs, c.teacher_logprobs, strict=True)]
        mean = sum(kls) / len(kls) if kls else 0.0
        parts.append(
            f"<div class='ep'><p class='meta'>completion {i}: teacher {html.escape(c.teacher)}, {len(c.tokens)} tokens, "
            f"mean KL <b>{mean:.3f}</b>, staleness {c.staleness}</p>"
        )
        parts.append(f"<pre class='ob'>{html.escape(tokenizer.decode(c.prompt))}</pre>")
        spans = []
        for tok, s, q, kl in zip(c.tokens, c.student_logprobs, c.teacher_logprobs, kls, strict=True):
            text = html.escape(tokenizer.decode([tok]))
            spans.append(
                f"<span class='tok' style='background:{_colour(kl)}' title='student {s:.3f}, teacher {q:.3f}, KL {kl:+.3f}'>{text}</span>"
            )
        parts.append(f"<pre class='ac'>{''.join(spans)}</pre></div>")
    return "\n".join(parts) + "\n"
