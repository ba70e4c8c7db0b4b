"""Shared pieces of the tool tests: a completer that replies from a script."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cookbook_cli.rl.types import TokensWithLogprobs


class ReplyScript:
    """Answers the n-th sampling call of an episode with `replies(prompt_tokens, n)`."""

    def __init__(self, replies: Callable[[list[int], int], list[int]]) -> None:
        self.replies = replies
        self.prompts: list[list[int]] = []

    async def __call__(self, model_input, stop, num_samples=1):  # type: ignore[no-untyped-def]
        tokens = model_input.to_ints()
        self.prompts.append(tokens)
        out = []
        for _ in range(num_samples):
            ac = self.replies(tokens, len(self.prompts) - 1)
            out.append(TokensWithLogprobs(ac, [-0.5] * len(ac), "stop"))
        return out


@pytest.fixture
def reply_script():
    return ReplyScript
