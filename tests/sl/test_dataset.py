"""Supervised dataset semantics and the built-in dataset builders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sl_helpers import conv, write_jsonl

from cookbook_cli.conversations import load_conversations, parse_conversation
from cookbook_cli.data.builders import ConversationsBuilder, HfBuilder, NoRobotsBuilder, sample_conversations_path
from cookbook_cli.data.datum import datum_from_tokens_weights
from cookbook_cli.data.supervised import ConversationDataset, split_train_test
from cookbook_cli.errors import CookbookError


def conversations(n: int) -> list:
    return [parse_conversation(conv(f"question {i}?", f"answer number {i}."), f"row {i}") for i in range(n)]


def first_targets(ds: ConversationDataset, index: int) -> list[tuple[int, ...]]:
    """An identity for each example of a batch (its token sequence)."""
    return [tuple(d.model_input.to_ints()) for d in ds.get_batch(index)]


def test_len_is_rows_floor_divided_by_batch_size(renderer):
    assert len(ConversationDataset(conversations(23), renderer, batch_size=5)) == 4
    assert len(ConversationDataset(conversations(4), renderer, batch_size=5)) == 0
    with pytest.raises(IndexError):
        ConversationDataset(conversations(10), renderer, batch_size=5).get_batch(2)


def test_an_epoch_visits_each_row_at_most_once_in_datasets_shuffle_order(renderer):
    import datasets

    convs = conversations(23)
    ds = ConversationDataset(convs, renderer, batch_size=5, seed=7)
    rows = [r for i in range(len(ds)) for r in ds.batch_indices(i)]
    assert len(rows) == 20 and len(set(rows)) == 20  # the last partial batch is dropped
    again = ConversationDataset(convs, renderer, batch_size=5, seed=7)
    assert [first_targets(ds, i) for i in range(4)] == [first_targets(again, i) for i in range(4)]
    for epoch in (0, 1, 5):
        ds.set_epoch(epoch)
        order = datasets.Dataset.from_dict({"row": list(range(23))}).shuffle(seed=epoch)["row"]
        assert [r for i in range(len(ds)) for r in ds.batch_indices(i)] == order[:20]


def test_set_epoch_reshuffles_deterministically(renderer):
    ds = ConversationDataset(conversations(40), renderer, batch_size=4, seed=0)
    epoch0 = [ds.batch_indices(i) for i in range(len(ds))]
    ds.set_epoch(1)
    epoch1 = [ds.batch_indices(i) for i in range(len(ds))]
    assert epoch0 != epoch1 and sorted(sum(epoch0, [])) == sorted(sum(epoch1, [])) == list(range(40))
    ds.set_epoch(0)
    assert [ds.batch_indices(i) for i in range(len(ds))] == epoch0
    fresh = ConversationDataset(conversations(40), renderer, batch_size=4, seed=0)
    fresh.set_epoch(1)
    assert [fresh.batch_indices(i) for i in range(len(fresh))] == epoch1


def test_datums_are_identical_to_rendering_each_conversation_alone(renderer):
    convs = load_conversations(sample_conversations_path())[:40]
    for mode in ("all_assistant_messages", "last_assistant_message", "all_tokens"):
        for max_length in (None, 20):
            ds = ConversationDataset(convs, renderer, batch_size=8, max_length=max_length, train_on_what=mode)
            got = [d for b in ds.all_batches() for d in b.datums]
            expected = []
            for c in convs:
                tokens, weights = renderer.build_supervised_tokens(c.messages, mode)
                d = datum_from_tokens_weights(tokens, weights, max_length)
                if np.count_nonzero(d.loss_fn_inputs["weights"].to_numpy()):
                    expected.append(d)
            assert len(got) == len(expected)
            for a, b in zip(got, expected):
                assert a.model_input == b.model_input
                for key in ("target_tokens", "weights"):
                    x, y = a.loss_fn_inputs[key], b.loss_fn_inputs[key]
                    assert (x.dtype, x.shape, x.data) == (y.dtype, y.shape, y.data)


def test_max_length_truncates_and_counts_never_fails(renderer):
    long = parse_conversation(conv("tell me a story", "once upon a time " * 50), "long")
    short = parse_conversation(conv("hi", "hello"), "short")
    ds = ConversationDataset([long, short, long, short], renderer, batch_size=4, max_length=30)
    batch = ds.build_batch(0)
    assert batch.stats.truncated == 2
    assert all(d.model_input.length <= 29 for d in batch.datums)
    assert batch.stats.examples == 4 and batch.stats.tokens == sum(d.model_input.length for d in batch.datums)


def test_examples_with_nothing_trained_after_truncation_are_skipped_and_counted(renderer):
    # The assistant answer starts after token 10: with max_length 10 nothing is left to train on.
    c = parse_conversation(conv("a fairly long question with many words in it, more than ten tokens", "ok"), "row")
    batch = ConversationDataset([c, c], renderer, batch_size=2, max_length=10).build_batch(0)
    assert batch.datums == [] and batch.stats.skipped == 2 and batch.stats.truncated == 2


def test_loss_tokens_count_the_trained_targets(renderer):
    c = parse_conversation(conv("hi", "hello there"), "row")
    tokens, weights = renderer.build_supervised_tokens(c.messages, "all_assistant_messages")
    batch = ConversationDataset([c], renderer, batch_size=1).build_batch(0)
    assert batch.stats.loss_tokens == sum(1 for w in weights[1:] if w > 0) > 0


def test_split_is_seeded_disjoint_and_complete():
    items = list(range(100))
    train, test = split_train_test(items, 0.1, seed=3)
    assert len(test) == 10 and sorted(train + test) == items and not set(train) & set(test)
    assert split_train_test(items, 0.1, seed=3) == (train, test)
    assert split_train_test(items, 0.1, seed=4)[1] != test
    assert len(split_train_test(items, 25, seed=0)[1]) == 25
    train0, test0 = split_train_test(items, 0, seed=0)
    assert test0 == [] and sorted(train0) == items and train0 != items  # shuffled even with no test rows


def test_split_is_datasets_shuffle_then_take_and_skip():
    """tinker-cookbook's split: `Dataset.shuffle(seed)`, test = take(k), train = skip(k)."""
    import datasets

    items = [f"row {i}" for i in range(37)]
    for seed, k in ((0, 0), (0, 5), (2, 1), (11, 9)):
        shuffled = datasets.Dataset.from_dict({"x": items}).shuffle(seed=seed)
        assert split_train_test(items, k, seed) == (shuffled.skip(k)["x"], shuffled.take(k)["x"])
    with pytest.raises(CookbookError, match="seed must be >= 0"):
        split_train_test(items, 3, -1)
    with pytest.raises(CookbookError, match="leaves no training rows"):
        split_train_test(items, 100, seed=0)


def test_conversations_builder_defaults_to_the_shipped_sample(renderer):
    path = sample_conversations_path()
    assert path.is_file() and len(load_conversations(path)) >= 200
    train, test = ConversationsBuilder().build(renderer, batch_size=8, max_length=None, train_on_what="all_assistant_messages")
    assert test is not None and len(test.conversations) == 40 and len(train) == 360 // 8


def test_conversations_builder_reads_a_file_and_splits_it(tmp_path, renderer):
    path = write_jsonl(tmp_path / "c.jsonl", [conv(f"q{i}", f"a{i}") for i in range(30)])
    train, test = ConversationsBuilder(path=str(path), test_size=6).build(renderer, 4, None, "last_assistant_message", seed=1)
    assert len(train.conversations) == 24 and test is not None and len(test.conversations) == 6
    train, test = ConversationsBuilder(path=str(path), test_size=0).build(renderer, 4, None, "last_assistant_message")
    assert test is None and len(train) == 7


def test_a_dataset_smaller_than_one_batch_is_a_clear_error(tmp_path, renderer):
    path = write_jsonl(tmp_path / "c.jsonl", [conv("q", "a")] * 3)
    with pytest.raises(CookbookError, match="fewer than one batch of 8; lower --batch-size"):
        ConversationsBuilder(path=str(path), test_size=0).build(renderer, 8, None, "last_assistant_message")


NO_ROBOTS_ROW = {"prompt": "p", "prompt_id": "x", "category": "Chat"}


def _no_robots_rows(n: int, offset: int = 0) -> list[dict]:
    return [
        {**NO_ROBOTS_ROW, "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(offset, offset + n)
    ]


def test_no_robots_builder_loads_train_and_test_splits_of_a_local_copy(tmp_path, renderer):
    folder = tmp_path / "no_robots"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", _no_robots_rows(12))
    write_jsonl(folder / "test.jsonl", _no_robots_rows(4, offset=100))
    builder = NoRobotsBuilder(path=str(folder))
    assert NoRobotsBuilder().path == "HuggingFaceH4/no_robots"
    train, test = builder.build(renderer, 4, None, "all_assistant_messages")
    assert len(train) == 3 and test is not None and len(test.conversations) == 4
    assert test.conversations[0].messages[0]["content"] == "q100"


def test_hf_builder_reads_parquet_with_a_custom_column_and_holds_out_rows(tmp_path, renderer):
    import datasets

    rows = [{"chat": r["messages"], "id": i} for i, r in enumerate(_no_robots_rows(20))]
    path = tmp_path / "d.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    train, test = HfBuilder(path=str(path), messages_field="chat", test_size=5).build(renderer, 5, None, "last_assistant_message")
    assert len(train.conversations) == 15 and test is not None and len(test.conversations) == 5
    with pytest.raises(CookbookError, match="has no column 'messages'.*chat"):
        HfBuilder(path=str(path)).build(renderer, 5, None, "last_assistant_message")


def test_hf_builder_names_the_row_of_a_bad_message(tmp_path, renderer):
    rows = _no_robots_rows(3)
    rows[2]["messages"][0]["role"] = "narrator"
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(CookbookError, match=r"\[train\] row 2: messages\[0\]: field 'role'"):
        HfBuilder(path=str(path)).build(renderer, 1, None, "last_assistant_message")


def test_hf_builder_unreachable_dataset_is_one_line(monkeypatch, renderer):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CookbookError, match="cannot load dataset 'nobody/no-such-dataset-xyz' split 'train'") as e:
        HfBuilder(path="nobody/no-such-dataset-xyz").build(renderer, 1, None, "last_assistant_message")
    assert "\n" not in str(e.value)


def test_the_builders_are_registered_through_the_plugin_hook():
    from cookbook_cli.plugins import registry

    entries = registry.dataset_builders.entries()
    assert {"conversations", "no_robots", "hf"} <= set(entries)
    assert entries["conversations"].plugin == "cookbook-cli" and entries["no_robots"].obj is NoRobotsBuilder


def test_sample_is_what_the_generator_script_writes(tmp_path):
    import runpy

    script = runpy.run_path(str(sample_conversations_path().parents[2] / "scripts" / "make_sample_conversations.py"))
    out = tmp_path / "s.jsonl"
    script["main"](["x", str(out)])
    assert out.read_bytes() == sample_conversations_path().read_bytes()
    assert all("messages" in json.loads(line) for line in out.read_text().splitlines())


def test_loss_reduction_mean_only_rescales_each_examples_weights(renderer):
    convs = load_conversations(sample_conversations_path())[:12]
    by_sum = ConversationDataset(convs, renderer, batch_size=4, max_length=40, loss_reduction="sum")
    by_mean = ConversationDataset(convs, renderer, batch_size=4, max_length=40, loss_reduction="mean")
    for i in range(len(by_sum)):
        a, b = by_sum.build_batch(i), by_mean.build_batch(i)
        assert a.stats == b.stats
        for x, y in zip(a.datums, b.datums, strict=True):
            assert x.model_input == y.model_input
            assert x.loss_fn_inputs["target_tokens"].data == y.loss_fn_inputs["target_tokens"].data
            w_sum = x.loss_fn_inputs["weights"].to_numpy()
            w_mean = y.loss_fn_inputs["weights"].to_numpy()
            assert set(np.unique(w_sum)) <= {0.0, 1.0}
            assert w_mean.sum() == pytest.approx(1.0, rel=1e-6)
            np.testing.assert_allclose(w_mean * w_sum.sum(), w_sum, rtol=1e-6)


def test_an_unknown_loss_reduction_lists_the_valid_ones(renderer):
    with pytest.raises(CookbookError, match="unknown loss_reduction value 'avg'.*mean, sum"):
        ConversationDataset(conversations(2), renderer, batch_size=1, loss_reduction="avg")
