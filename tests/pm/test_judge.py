"""PreferenceJudge and its metrics against fake sampling clients whose
answers are known: a judge that always names one position, and one that
always prefers the shorter reply."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from cookbook_cli.preference.judge import PreferenceJudge, judge_comparisons
from cookbook_cli.preference.judging import judging_conversations, judging_messages, label_sequences
from cookbook_cli.preference.types import Comparison, LabeledComparison
from cookbook_cli.renderers import get_renderer


class FakeFuture:
    def __init__(self, value):
        self.value = value

    def __await__(self):
        yield from ()
        return self.value


class FakeJudgeClient:
    """Gives every token of a sequence the logprob log(p), where p is what this
    judge thinks of the sequence's answer: `prefer(reply_a, reply_b) -> "A" | "B"`
    names the reply it likes, and the answer naming it gets 0.8."""

    def __init__(self, tokenizer, prefer):
        self.tokenizer = tokenizer
        self.prefer = prefer
        self.calls = 0

    async def compute_logprobs_async(self, prompt):
        self.calls += 1
        tokens = prompt.to_ints()
        text = self.tokenizer.decode(tokens)
        a, b = re.search(r"Reply A:\nAssistant: (.*?)\n\nReply B:\nAssistant: (.*?)<\|eot_id\|>", text, re.S).groups()
        answer = re.search(r"([AB])<\|eot_id\|>$", text).group(1)
        p = 0.8 if answer == self.prefer(a, b) else 0.2
        return [None] + [math.log(p)] * (len(tokens) - 1)


def comparison(short: str, long: str, label: str) -> LabeledComparison:
    prompt = [{"role": "user", "content": "Say hi."}]
    replies = ([{"role": "assistant", "content": short}], [{"role": "assistant", "content": long}])
    a, b = replies if label == "A" else replies[::-1]
    return LabeledComparison(Comparison(prompt, a, b), label)


@pytest.fixture(scope="module")
def renderer():
    return get_renderer("llama3", "llama3")


def test_the_label_tokens_are_where_the_two_answers_differ(renderer):
    messages = judging_messages([{"role": "user", "content": "Hi"}], "Hello!", "Go away.")
    a, b, span_a, span_b = label_sequences(renderer, messages)
    assert renderer.tokenizer.decode(a[span_a]) == "A" and renderer.tokenizer.decode(b[span_b]) == "B"
    assert a[: span_a.start] == b[: span_b.start] == renderer.build_generation_tokens(messages)
    assert a[span_a.stop :] == b[span_b.stop :] and len(a[span_a.stop :]) >= 1  # the end of turn


def test_a_comparison_trains_in_both_orders():
    lc = comparison("Hi!", "Um, well, hello I guess.", "B")
    straight, swapped = judging_conversations(lc)
    assert straight.messages[-1] == {"role": "assistant", "content": "B"}
    assert swapped.messages[-1] == {"role": "assistant", "content": "A"}
    assert "Reply A:\nAssistant: Um, well" in straight.messages[0]["content"]
    assert "Reply A:\nAssistant: Hi!" in swapped.messages[0]["content"]


def test_a_judge_that_always_names_the_first_reply_has_full_position_bias_and_no_preference(renderer):
    client = FakeJudgeClient(renderer.tokenizer, lambda a, b: "A")
    judge = PreferenceJudge(client, renderer)
    straight, swapped = asyncio.run(judge.orders([{"role": "user", "content": "Say hi."}], "Hi!", "Hello there."))
    assert straight == pytest.approx(0.8) and swapped == pytest.approx(0.2)
    assert asyncio.run(judge.judge([{"role": "user", "content": "Say hi."}], "Hi!", "Hello there.")) == pytest.approx(0.5)
    pairs = [comparison("Hi!", "Well, hello, I guess.", label) for label in "AB" * 3]
    client.calls = 0
    metrics = asyncio.run(judge_comparisons(judge, pairs))
    assert metrics["first_rate_minus_half"] == pytest.approx(0.5) and metrics["order_gap"] == pytest.approx(1.0)
    assert metrics["accuracy_one_order"] == pytest.approx(0.5)
    assert metrics["pairs"] == 6 and client.calls == 6 * 4


def test_an_unbiased_judge_that_agrees_with_the_labels_scores_one(renderer):
    client = FakeJudgeClient(renderer.tokenizer, lambda a, b: "A" if len(a) < len(b) else "B")
    judge = PreferenceJudge(client, renderer)
    pairs = [comparison("Hi!", "Well, hello, I guess.", label) for label in "AB" * 3]
    pairs.append(LabeledComparison(pairs[0].comparison, "Tie"))  # ties are left out
    metrics = asyncio.run(judge_comparisons(judge, pairs))
    assert metrics == {"accuracy": 1.0, "accuracy_one_order": 1.0, "first_rate_minus_half": 0.0, "order_gap": 0.0, "pairs": 6.0}
    # the wrong judge: accuracy 0, still unbiased
    contrary = PreferenceJudge(FakeJudgeClient(renderer.tokenizer, lambda a, b: "B" if len(a) < len(b) else "A"), renderer)
    metrics = asyncio.run(judge_comparisons(contrary, pairs))
    assert metrics["accuracy"] == 0.0 and metrics["first_rate_minus_half"] == 0.0
