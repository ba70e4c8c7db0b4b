"""The Hugging Face preference builders through `datasets.load_dataset` (the real
loading path), on small local files with each dataset's columns:
Anthropic/hh-rlhf (chosen/rejected transcripts), argilla/ultrafeedback-
binarized-preferences (instruction, chosen_response, rejected_response and
their mean ratings) and nvidia/HelpSteer3 `preference` (context, response1,
response2, overall_preference from -3 to 3). Plus: registered with
kind="preference" and listed by `cookbook datasets list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.builders import HelpSteer3Builder, HhRlhfBuilder, UltraFeedbackBuilder, parse_transcript


@pytest.fixture(scope="module")
def renderer():
    from cookbook_cli.renderers import get_renderer

    return get_renderer("llama3", "llama3")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def hh(prefix: str, last: str) -> str:
    return f"{prefix}\n\nAssistant: {last}"


TWO_TURNS = "\n\nHuman: What is 2 plus 2?\n\nAssistant: 4.\n\nHuman: And 3 plus 3?"


def test_parse_transcript() -> None:
    assert parse_transcript(hh(TWO_TURNS, "6.")) == [
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3 plus 3?"},
        {"role": "assistant", "content": "6."},
    ]
    assert parse_transcript("no turns at all") is None
    assert parse_transcript("preamble\n\nHuman: hi\n\nAssistant: yo") is None
    # a speaker name inside a message is text, not a turn
    assert parse_transcript("\n\nHuman: say Assistant: please\n\nAssistant: ok")[0]["content"] == "say Assistant: please"  # type: ignore[index]


def test_hh_rlhf_from_a_local_folder(tmp_path, renderer) -> None:
    folder = tmp_path / "hh-rlhf"
    write_jsonl(
        folder / "train.jsonl",
        [
            {"chosen": hh(TWO_TURNS, "6."), "rejected": hh(TWO_TURNS, "I don't know.")},
            {"chosen": hh("\n\nHuman: Hi!", "Hello! How can I help?"), "rejected": hh("\n\nHuman: Hi!", "Go away.")},
            {"chosen": "not a transcript", "rejected": hh("\n\nHuman: Hi!", "Go away.")},
            {"chosen": hh("\n\nHuman: Hi!", "Hello!"), "rejected": hh("\n\nHuman: Hey!", "Hello!")},
            {"chosen": hh("\n\nHuman: Hi!", ""), "rejected": hh("\n\nHuman: Hi!", "Go away.")},
        ],
    )
    write_jsonl(folder / "test.jsonl", [{"chosen": hh("\n\nHuman: Bye.", "Goodbye!"), "rejected": hh("\n\nHuman: Bye.", "Whatever.")}])
    train, test = HhRlhfBuilder(path=str(folder)).build(renderer, 1, None, 0)
    assert train.num_rows == 2 and test is not None and test.num_rows == 1
    assert dict(train.skipped) == {"transcript that does not parse": 1, "transcripts that differ before the last reply": 1, "empty completion": 1}
    first = train.comparisons[0]
    assert [m["role"] for m in first.comparison.prompt_conversation] == ["user", "assistant", "user"]
    assert first.chosen_and_rejected() == ([{"role": "assistant", "content": "6."}], [{"role": "assistant", "content": "I don't know."}])
    assert first.source == f"{folder}[train] row 0"
    assert test.comparisons[0].comparison.completion_A[0]["content"] == "Goodbye!"


ULTRA = {"source": "evol_instruct", "chosen_model": "m1"}


def test_ultrafeedback_from_a_parquet_file_ties_skipped(tmp_path, renderer) -> None:
    import datasets

    rows = [
        {**ULTRA, "instruction": f"Name a fruit ({i}).", "chosen_response": "An apple.", "rejected_response": "A stone.",
         "chosen_avg_rating": 4.5, "rejected_avg_rating": 2.0}
        for i in range(4)
    ]
    rows.append({**ULTRA, "instruction": "Say hi.", "chosen_response": "Hi!", "rejected_response": "Hello!", "chosen_avg_rating": 3.0, "rejected_avg_rating": 3.0})
    path = tmp_path / "uf.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    train, test = UltraFeedbackBuilder(path=str(path), test_size=1).build(renderer, 1, None, 0)
    assert train.num_rows + (test.num_rows if test else 0) == 4 and test is not None and test.num_rows == 1
    assert dict(train.skipped) == {"tie": 1}
    c = train.comparisons[0]
    assert c.comparison.prompt_conversation[0] == {"role": "user", "content": c.comparison.prompt_conversation[0]["content"]}
    assert c.chosen_and_rejected()[0][0]["content"] == "An apple."
    # the ratings are optional: without them nothing is a tie
    no_ratings = tmp_path / "uf2.parquet"
    datasets.Dataset.from_list([{k: v for k, v in r.items() if "rating" not in k} for r in rows]).to_parquet(str(no_ratings))
    train2, _ = UltraFeedbackBuilder(path=str(no_ratings), test_size=0).build(renderer, 1, None, 0)
    assert train2.num_rows == 5 and not train2.skipped
    assert UltraFeedbackBuilder(path=str(path), test_size=0, max_rows=2).build(renderer, 1, None, 0)[0].num_rows == 2


HELPSTEER3_CARD = """---
configs:
- config_name: preference
  default: true
  data_files:
  - split: train
    path: preference/train.jsonl
  - split: validation
    path: preference/validation.jsonl
- config_name: edit
  data_files:
  - split: train
    path: edit/train.jsonl
---
"""


def helpsteer_row(preference: int, context: list[dict] | None = None) -> dict:
    return {
        "domain": "general",
        "language": "english",
        "context": context or [{"role": "user", "content": "Name a color."}],
        "response1": "Blue.",
        "response2": "Um, maybe blue?",
        "overall_preference": preference,
        "individual_preference": [{"score": preference, "reasoning": "shorter is better"}],
    }


def test_helpsteer3_labels_follow_the_sign_and_ties_are_skipped(tmp_path, renderer) -> None:
    # laid out as the Hub repo is (a local snapshot): configurations declared in README.md
    folder = tmp_path / "helpsteer3"
    multi = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a color."}]
    write_jsonl(folder / "preference" / "train.jsonl", [helpsteer_row(-2), helpsteer_row(3, multi), helpsteer_row(0), helpsteer_row(-1)])
    write_jsonl(folder / "preference" / "validation.jsonl", [helpsteer_row(1), helpsteer_row(0)])
    write_jsonl(folder / "edit" / "train.jsonl", [{"context": [], "original_response": "x"}])
    (folder / "README.md").write_text(HELPSTEER3_CARD, encoding="utf-8")
    train, test = HelpSteer3Builder(path=str(folder)).build(renderer, 1, None, 0)
    assert [c.label for c in train.comparisons] == ["A", "B", "A"] and dict(train.skipped) == {"tie": 1}
    # -3..-1: response 1 is better; 1..3: response 2 is better
    assert train.comparisons[0].chosen_and_rejected()[0][0]["content"] == "Blue."
    assert train.comparisons[1].chosen_and_rejected()[0][0]["content"] == "Um, maybe blue?"
    assert train.comparisons[1].comparison.prompt_conversation == multi
    assert test is not None and test.num_rows == 1 and dict(test.skipped) == {"tie": 1}


@pytest.mark.parametrize(
    "builder, rows, message",
    [
        (HhRlhfBuilder, [{"prompt": "x", "response": "y"}], "has no column 'chosen', 'rejected' (columns: prompt, response)"),
        (UltraFeedbackBuilder, [{"instruction": "x", "chosen": "y", "rejected": "z"}], "has no column 'chosen_response', 'rejected_response'"),
        (HelpSteer3Builder, [helpsteer_row(1) | {"overall_preference": "better"}], "row 0: column 'overall_preference' must be a number"),
        (HelpSteer3Builder, [helpsteer_row(1) | {"context": "Name a color."}], "row 0: field 'context' must be a list of messages"),
        (HhRlhfBuilder, [{"chosen": 5, "rejected": "x"}], "row 0: column 'chosen' must be a string"),
        (HelpSteer3Builder, [helpsteer_row(0)], "has no usable training comparisons (skipped: 1 tie)"),
    ],
)
def test_wrong_columns_and_values_name_the_dataset(tmp_path, renderer, builder, rows, message) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(CookbookError) as e:
        builder(path=str(path), test_split=None, test_size=0).build(renderer, 1, None, 0)
    assert str(path) in str(e.value) and message in str(e.value), str(e.value)


def test_a_missing_hub_dataset_is_one_line(renderer, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CookbookError, match=r"cannot load dataset 'nobody/no-such-prefs' split 'train'"):
        HhRlhfBuilder(path="nobody/no-such-prefs").build(renderer, 1, None, 0)


def test_registered_as_preference_and_listed() -> None:
    from cookbook_cli.cli.main import app

    result = CliRunner().invoke(app, ["datasets", "list", "--json"])
    assert result.exit_code == 0, result.output
    kinds = {row["name"]: row["kind"] for row in json.loads(result.output)}
    assert {name: kinds.get(name) for name in ("comparisons", "hh_rlhf", "ultrafeedback", "helpsteer3")} == dict.fromkeys(
        ("comparisons", "hh_rlhf", "ultrafeedback", "helpsteer3"), "preference"
    )
    assert kinds["conversations"] == "supervised"
    info = CliRunner().invoke(app, ["datasets", "info", "helpsteer3"])
    assert "dataset.config_name" in info.output and "'preference'" in info.output
