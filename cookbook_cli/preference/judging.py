"""The judging conversation of a preference model (`train pm`): a prompt and two
replies written into one user turn, answered by one label, "A" or "B".

Every consumer of a preference model (its training data, `PreferenceJudge`,
the `preference` env, the `win_rate` evaluator) writes the question with
`judging_messages`, so a judge is always asked what it was trained on. A
comparison becomes two training conversations, one per order of its replies,
so the judge cannot learn a favourite position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from cookbook_cli.conversations import Conversation
from cookbook_cli.types import Message, text_of

if TYPE_CHECKING:
    from cookbook_cli.preference.types import LabeledComparison
    from cookbook_cli.renderers.base import Renderer

LABELS = ("A", "B")
QUESTION = "Which reply to the conversation is better? Answer with one letter, A or B."

Reply = Union[str, Message, Sequence[Message]]
"""A reply to judge: its text, one assistant message, or the messages of a multi-turn reply."""


def reply_messages(reply: Reply) -> list[Message]:
    if isinstance(reply, str):
        return [{"role": "assistant", "content": reply}]
    if isinstance(reply, dict):
        return [reply]  # type: ignore[list-item]
    return list(reply)


def _line(message: Message) -> str:
    text = text_of(message)
    calls = message.get("tool_calls") or []
    if calls:
        text += "".join(f" [calls {c.function.name}({c.function.arguments})]" for c in calls)
    return f"{message['role'].capitalize()}: {text}"


def transcript(messages: Sequence[Message]) -> str:
    return "\n".join(_line(m) for m in messages)


def judging_messages(prompt: Sequence[Message], first: Reply, second: Reply) -> list[Message]:
    """The question put to the judge: the conversation, reply A (`first`) and reply B (`second`)."""
    body = (
        f"{QUESTION}\n\nConversation:\n{transcript(prompt)}\n\n"
        f"Reply A:\n{transcript(reply_messages(first))}\n\nReply B:\n{transcript(reply_messages(second))}"
    )
    return [{"role": "user", "content": body}]


def judging_conversations(comparison: LabeledComparison) -> list[Conversation]:
    """The two training conversations of a (non-tie) comparison: its replies in
    the file's order and swapped, each answered with the better one's label."""
    out = []
    for lc in (comparison, comparison.swap()):
        c = lc.comparison
        answer: Message = {"role": "assistant", "content": lc.label}
        out.append(Conversation([*judging_messages(c.prompt_conversation, c.completion_A, c.completion_B), answer], source=lc.source))
    return out


def label_sequences(renderer: Renderer, messages: list[Message]) -> tuple[list[int], list[int], slice, slice]:
    """The question answered "A" and answered "B" as token sequences, and where
    each one's label tokens lie (the tokens in which the two answers differ,
    after the shared prompt and before the shared end of turn)."""
    from cookbook_cli.types import TrainOnWhat

    a, _ = renderer.build_supervised_tokens([*messages, {"role": "assistant", "content": "A"}], TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    b, _ = renderer.build_supervised_tokens([*messages, {"role": "assistant", "content": "B"}], TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a, b, slice(start, len(a) - end), slice(start, len(b) - end)

