"""`cookbook serve` through the official `openai` client, against a live server
on 127.0.0.1 with a tiny random model on the local engine."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("openai")

HELLO = [{"role": "user", "content": "Say hello."}]


def test_models_and_health(live):
    import urllib.request

    client = live.client()
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with urllib.request.urlopen(f"{live.url}/health") as r:  # no key needed
        assert r.status == 200


def test_chat_renders_with_the_renderer_and_counts_usage(live):
    reply = live.client().chat.completions.create(model="tiny", messages=HELLO, max_tokens=6, temperature=0)
    (choice,) = reply.choices
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    prompt = live.model.renderer.build_generation_tokens(HELLO)
    assert reply.usage.prompt_tokens == len(prompt)
    assert 1 <= reply.usage.completion_tokens <= 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.choices[0].finish_reason == ("length" if reply.usage.completion_tokens == 6 else "stop")


def test_seeds_reproduce_and_n_gives_several_choices(live):
    client = live.client()
    one = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, seed=11, n=3)
    two = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, seed=11, n=3)
    assert len(one.choices) == 3 and [c.index for c in one.choices] == [0, 1, 2]
    assert [c.message.content for c in one.choices] == [c.message.content for c in two.choices]
    assert len({c.message.content for c in one.choices}) > 1  # three draws of a random model, not one repeated
    other = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, seed=12, n=3)
    assert [c.message.content for c in other.choices] != [c.message.content for c in one.choices]


def test_streaming_sends_the_same_reply_as_chunks(live):
    client = live.client()
    whole = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, seed=5)
    stream = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, seed=5, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_chat_logprobs_with_top_alternatives(live):
    reply = live.client().chat.completions.create(model="tiny", messages=HELLO, max_tokens=5, seed=2, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    for item in content:
        assert len(item.top_logprobs) == 3 and item.logprob <= 0
        tops = [t.logprob for t in item.top_logprobs]
        assert tops == sorted(tops, reverse=True) and item.logprob <= tops[0] + 1e-5


def test_completions_raw_text_token_ids_and_logprobs(live):
    client = live.client()
    reply = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=6, seed=4, n=2, logprobs=2)
    assert len(reply.choices) == 2
    for c in reply.choices:
        assert len(c.logprobs.tokens) == len(c.logprobs.token_logprobs) == len(c.logprobs.top_logprobs)
        assert all(len(t) <= 2 for t in c.logprobs.top_logprobs)
    tokenizer = live.model.tokenizer
    ids = [tokenizer.bos_token_id, *tokenizer.encode("Once upon a time")] if tokenizer.bos_token_id is not None else tokenizer.encode("Once upon a time")
    by_ids = client.completions.create(model="tiny", prompt=ids, max_tokens=6, seed=4, n=2)
    assert [c.text for c in by_ids.choices] == [c.text for c in reply.choices]
    assert by_ids.usage.prompt_tokens == reply.usage.prompt_tokens == len(ids)
    streamed = "".join(c.choices[0].text for c in client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=6, seed=4, stream=True) if c.choices)
    assert streamed == client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=6, seed=4).choices[0].text


def test_stop_strings_cut_the_reply(live):
    client = live.client()
    full = client.completions.create(model="tiny", prompt="abc", max_tokens=12, seed=9, temperature=0).choices[0].text
    assert len(full) > 3
    stop = full[2:4]
    cut = client.completions.create(model="tiny", prompt="abc", max_tokens=12, seed=9, temperature=0, stop=[stop])
    assert cut.choices[0].text == full[: full.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_concurrent_requests_share_batches_and_all_complete(live):
    """A bounded load: 32 clients, two requests each; every reply complete."""
    client = live.client()

    def ask(i: int) -> list[tuple[str, int]]:
        out = []
        for j in range(2):
            r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": f"client {i} request {j}"}], max_tokens=8, seed=i)
            out.append((r.choices[0].finish_reason, r.usage.completion_tokens))
        return out

    with ThreadPoolExecutor(32) as pool:
        results = [x for chunk in pool.map(ask, range(32)) for x in chunk]
    assert len(results) == 64
    assert all(reason in ("stop", "length") and 1 <= n <= 8 for reason, n in results)
    assert max(requests for requests, _ in live.model.client.batches) > 1  # requests joined one another's decode batches
