"""Comparison files and preference datasets: both line shapes read to the same
comparison, ties and other unusable rows are skipped and counted (never turned
into a preference), pairs are (chosen, rejected) Datums trained on the
completion only, truncation is counted, and batches follow the seeded order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.builders import ComparisonsBuilder, sample_preferences_path
from cookbook_cli.preference.data import (
    SHAPE_CHOSEN_REJECTED,
    SHAPE_COMPARISON,
    ComparisonSet,
    PreferenceDataset,
    load_comparisons,
    parse_comparison,
)
from cookbook_cli.preference.types import Comparison, LabeledComparison

U = {"role": "user", "content": "Hi, I am Ada."}
GOOD = {"role": "assistant", "content": "Hello, Ada!"}
BAD = {"role": "assistant", "content": "What?"}


def tinker_line(label: str = "A", a: dict = GOOD, b: dict = BAD, prompt: list | None = None) -> dict:
    return {"comparison": {"prompt_conversation": [U] if prompt is None else prompt, "completion_A": [a], "completion_B": [b]}, "label": label}


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _plain(datum) -> tuple:
    inputs = datum.loss_fn_inputs
    return datum.model_input.to_ints(), list(inputs["target_tokens"].data), list(inputs["weights"].data)


@pytest.fixture(scope="module")
def renderer():
    from cookbook_cli.renderers import get_renderer

    return get_renderer("llama3", "llama3")


def test_both_shapes_read_to_the_same_comparison() -> None:
    expected = Comparison([U], [GOOD], [BAD])
    a, shape_a = parse_comparison(tinker_line("A"), "f:1")
    b, shape_b = parse_comparison({"prompt": [U], "chosen": [GOOD], "rejected": [BAD]}, "f:2")
    assert (a.comparison, a.label, shape_a) == (expected, "A", SHAPE_COMPARISON)
    assert (b.comparison, b.label, shape_b) == (expected, "A", SHAPE_CHOSEN_REJECTED)
    assert a.chosen_and_rejected() == b.chosen_and_rejected() == ([GOOD], [BAD])
    swapped, _ = parse_comparison(tinker_line("b", BAD, GOOD), "f:3")
    assert swapped.label == "B" and swapped.chosen_and_rejected() == ([GOOD], [BAD])
    assert a.swap().swap() == a and a.swap().chosen_and_rejected() == a.chosen_and_rejected()
    assert parse_comparison(a.to_json(), "f:4")[0] == a


def test_string_and_implicit_prompt_forms() -> None:
    strings, _ = parse_comparison({"prompt": "Hi, I am Ada.", "chosen": "Hello, Ada!", "rejected": "What?"}, "f:1")
    assert strings.comparison == Comparison([U], [GOOD], [BAD])
    system = {"role": "system", "content": "Be kind."}
    call = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "look", "arguments": "{}"}}]}
    implicit, _ = parse_comparison(
        {
            "chosen": [system, U, call, {"role": "tool", "content": "Ada"}, GOOD],
            "rejected": [system, U, call, {"role": "tool", "content": "Ada"}, BAD],
            "tools": [{"type": "function", "function": {"name": "look"}}],
        },
        "f:2",
    )
    c = implicit.comparison
    # the shared start up to the last user turn is the prompt; the whole reply turn is the completion
    assert c.prompt_conversation == [system, U]
    assert [m["role"] for m in c.completion_A] == ["assistant", "tool", "assistant"] and c.completion_A[-1] == GOOD
    assert c.completion_B[-1] == BAD and c.tools[0].name == "look"
    plain, _ = parse_comparison({"chosen": "Yes.", "rejected": "No."}, "f:3")
    assert plain.comparison.prompt_conversation == [] and plain.comparison.completion_A[0]["content"] == "Yes."


@pytest.mark.parametrize(
    "row, message",
    [
        ([1, 2], "f:7: expected a JSON object"),
        ({"messages": []}, "f:7: not a comparison (keys: 'messages')"),
        ({"comparison": {"prompt_conversation": [U], "completion_A": [GOOD]}, "label": "A"}, "f:7: missing field 'comparison.completion_B'"),
        ({"comparison": {"prompt_conversation": [U], "completion_A": [GOOD], "completion_B": [BAD]}}, "f:7: missing field 'label'"),
        (tinker_line("C"), "f:7: field 'label' must be \"A\", \"B\" or \"Tie\"; got 'C'"),
        (tinker_line(None), "f:7: field 'label'"),  # type: ignore[arg-type]
        ({"comparison": "x", "label": "A"}, "f:7: field 'comparison' must be an object"),
        ({**tinker_line(), "chosen": [GOOD]}, "f:7: has both 'comparison' and 'chosen'"),
        ({"prompt": [U], "chosen": [GOOD]}, "f:7: missing field 'rejected'"),
        ({"prompt": [U], "chosen": "x", "rejected": {"role": "assistant"}}, "f:7: field 'rejected' must be a list of messages"),
        ({"prompt": [U], "chosen": [U], "rejected": [BAD]}, "f:7: chosen[0]: a completion holds the model's reply"),
        ({"prompt": [{"role": "robot", "content": "x"}], "chosen": [GOOD], "rejected": [BAD]}, "f:7: prompt[0]: field 'role'"),
        ({"prompt": [U], "chosen": [{"role": "assistant", "content": 3}], "rejected": [BAD]}, "f:7: chosen[0]: field 'content'"),
        ({"chosen": [U, GOOD], "rejected": [{"role": "user", "content": "other"}, BAD]}, "f:7: chosen[0]: a completion holds"),
        ({"prompt": "q", "completion": "a", "label": True}, "f:7: an unpaired row (prompt, completion, label) is not a comparison"),
        ({"prompt": [], "chosen": [], "rejected": []}, "f:7: the prompt and both completions are empty"),
        (tinker_line(prompt=[]) | {"comparison": {"prompt_conversation": [], "completion_A": [], "completion_B": []}}, "f:7: the prompt and both completions are empty"),
        ({"prompt": [U], "chosen": [GOOD], "rejected": [BAD], "tools": "x"}, "f:7: field 'tools' must be a list"),
    ],
)
def test_malformed_rows_name_the_line_and_field(row, message) -> None:
    with pytest.raises(CookbookError) as e:
        parse_comparison(row, "f:7")
    assert message in str(e.value)


def test_ties_and_useless_pairs_are_skipped_and_counted_never_trained(tmp_path, renderer, caplog) -> None:
    empty = {"role": "assistant", "content": "  "}
    rows = [
        tinker_line("A"),
        tinker_line("Tie"),
        tinker_line("tie", BAD, GOOD),
        tinker_line("B", empty, GOOD),  # an empty completion, whichever side
        {"prompt": "q", "chosen": "same", "rejected": "same"},
        tinker_line("B", BAD, GOOD),
    ]
    path = write(tmp_path / "c.jsonl", rows)
    comparisons = load_comparisons(path)
    assert [c.label for c in comparisons] == ["A", "Tie", "Tie", "B", "A", "B"]
    with pytest.raises(CookbookError, match="label 'Tie' prefers neither"):
        comparisons[1].chosen_and_rejected()
    with pytest.raises(CookbookError, match=r"c\.jsonl:2: a tie cannot be trained on"):
        PreferenceDataset(comparisons, renderer, 1)
    with caplog.at_level(logging.WARNING, logger="cookbook_cli.preference"):
        train, test = ComparisonsBuilder(path=str(path), test_size=0).build(renderer, 1, None, 0)
    assert test is None and train.num_rows == 2
    assert dict(train.skipped) == {"tie": 2, "empty completion": 1, "chosen equals rejected": 1}
    assert "skipped 1 chosen equals rejected, 1 empty completion, 2 tie" in caplog.text
    # both usable pairs prefer "Hello, Ada!" whatever their label
    for i in range(2):
        chosen, rejected = train.build_rows([i]).chosen[0], train.build_rows([i]).rejected[0]
        assert renderer.tokenizer.decode(chosen.model_input.to_ints()).endswith("Hello, Ada!")
        assert renderer.tokenizer.decode(rejected.model_input.to_ints()).endswith("What?")


def test_only_ties_is_an_error_that_counts_them(tmp_path, renderer) -> None:
    path = write(tmp_path / "c.jsonl", [tinker_line("Tie")] * 3 + [{"prompt": "q", "chosen": "a", "rejected": "a"}])
    with pytest.raises(CookbookError, match=r"has no usable training comparisons \(skipped: 1 chosen equals rejected, 3 tie\)"):
        ComparisonsBuilder(path=str(path), test_size=0).build(renderer, 1, None, 0)


def test_a_file_mixing_both_shapes_is_read_and_the_mix_logged(tmp_path, renderer, caplog) -> None:
    rows = [tinker_line("A"), {"prompt": [U], "chosen": [GOOD], "rejected": [BAD]}, tinker_line("B", BAD, GOOD)]
    path = write(tmp_path / "mixed.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="cookbook_cli.preference"):
        comparisons = load_comparisons(path)
    assert len(comparisons) == 3 and len({(c.comparison.completion_A[0]["content"], c.label) for c in comparisons}) == 2
    assert f"{path} mixes the two comparison shapes: 2 lines of comparison, 1 lines of prompt/chosen/rejected" in caplog.text
    assert [c.source for c in comparisons] == [f"{path}:{i}" for i in (1, 2, 3)]


def test_pairs_are_trained_on_the_completion_only(renderer) -> None:
    system = {"role": "system", "content": "Be kind."}
    earlier = {"role": "assistant", "content": "Earlier reply."}
    lc, _ = parse_comparison(
        {"prompt": [system, U, earlier, U], "chosen": [GOOD], "rejected": [BAD]}, "f:1"
    )
    batch = PreferenceDataset([lc], renderer, 1).build_batch(0)
    assert len(batch) == 1 and [_plain(d) for d in batch.datums] == [_plain(batch.chosen[0]), _plain(batch.rejected[0])]
    for datum, text in zip(batch.datums, ["Hello, Ada!", "What?"]):
        targets = datum.loss_fn_inputs["target_tokens"].data
        weights = datum.loss_fn_inputs["weights"].data
        trained = renderer.tokenizer.decode([t for t, w in zip(targets, weights) if w > 0])
        assert trained == text + "<|eot_id|>"  # not the system, user or earlier assistant message
    assert batch.stats.pairs == 1 and batch.stats.loss_tokens == sum(
        sum(1 for w in d.loss_fn_inputs["weights"].data if w > 0) for d in batch.datums
    )
    assert batch.stats.tokens == sum(d.model_input.length for d in batch.datums)
    # the same pieces as the supervised path: chosen = the prompt plus the chosen reply, trained with customized weights
    tokens, weights = renderer.build_supervised_tokens(
        [{**system, "trainable": False}, {**U, "trainable": False}, {**earlier, "trainable": False}, {**U, "trainable": False}, {**GOOD, "trainable": True}],
        "customized",
    )
    assert batch.chosen[0].model_input.to_ints() == tokens[:-1] and batch.chosen[0].loss_fn_inputs["weights"].data == weights[1:]


def test_truncation_is_counted_and_pairs_with_nothing_left_are_skipped(renderer) -> None:
    short = LabeledComparison(Comparison([U], [GOOD], [BAD]), "A", "f:1")
    long_reply = LabeledComparison(Comparison([U], [{"role": "assistant", "content": "word " * 40}], [BAD]), "A", "f:2")
    long_prompt = LabeledComparison(Comparison([{"role": "user", "content": "word " * 40}], [GOOD], [BAD]), "A", "f:3")
    ds = PreferenceDataset([short, long_reply, long_prompt], renderer, 3, max_length=24)
    batch = ds.build_batch(0)
    assert (batch.stats.pairs, batch.stats.truncated, batch.stats.skipped) == (2, 2, 1)
    assert all(d.model_input.length <= 23 for d in batch.datums)
    assert batch.stats.as_metrics("train/") == {
        "train/pairs": 2, "train/tokens": batch.stats.tokens, "train/loss_tokens": batch.stats.loss_tokens, "train/truncated": 2, "train/skipped": 1,
    }
    only_long = PreferenceDataset([long_prompt] * 2, renderer, 1, max_length=24, name="d.jsonl")
    with pytest.raises(CookbookError, match=r"dataset d\.jsonl has nothing to train on: in none of its 2 pairs .* max_length=24; raise --max-length"):
        only_long.validate()


def test_batches_follow_the_seeded_epoch_order(renderer) -> None:
    comparisons = load_comparisons(sample_preferences_path())[:40]
    a = PreferenceDataset(comparisons, renderer, 8, seed=3)
    b = PreferenceDataset(comparisons, renderer, 8, seed=3)
    assert len(a) == 5
    for epoch in (0, 1):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert [a.batch_indices(i) for i in range(5)] == [b.batch_indices(i) for i in range(5)]
        assert [_plain(d) for d in a.build_batch(2).datums] == [_plain(d) for d in b.build_batch(2).datums]
    a.set_epoch(0)
    first = a.batch_indices(0)
    a.set_epoch(1)
    assert a.batch_indices(0) != first
    everything = a.all_batches()
    assert [len(x) for x in everything] == [8] * 5 and sum(x.stats.pairs for x in everything) == 40
    with pytest.raises(IndexError):
        a.build_batch(5)


def test_the_sample_file_builds(renderer) -> None:
    train, test = ComparisonsBuilder().build(renderer, 8, 2048, 0)
    assert (train.num_rows, test.num_rows if test else 0) == (270, 30) and not train.skipped
    labels = {c.label for c in train.comparisons}
    assert labels == {"A", "B"}
    assert train.name == "sample (sample_preferences.jsonl)"


def test_render_errors_name_the_comparison_line(tmp_path, renderer) -> None:
    thinking = {"role": "assistant", "content": "Hello!", "reasoning_content": "hmm"}
    path = write(tmp_path / "c.jsonl", [tinker_line("A")] * 3 + [tinker_line("A", thinking, BAD)])
    with pytest.raises(CookbookError, match=rf"{path}:4: renderer 'llama3' has no thinking format"):
        ComparisonsBuilder(path=str(path), test_size=0).build(renderer, 1, None, 0)


def test_comparison_set_usable_keeps_earlier_counts() -> None:
    tie = LabeledComparison(Comparison([U], [GOOD], [BAD]), "Tie")
    ok = LabeledComparison(Comparison([U], [GOOD], [BAD]), "A")
    kept = ComparisonSet([tie, ok], skipped={"transcript that does not parse": 2}).usable()  # type: ignore[arg-type]
    assert kept.comparisons == [ok] and dict(kept.skipped) == {"transcript that does not parse": 2, "tie": 1}
