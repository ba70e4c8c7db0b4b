"""The streaming path of the `hf` builder (`dataset.streaming=true`, issue 16):
seeded per-epoch order, each row at most once per epoch, held-out rows never
trained, exact resume from (epoch, batch) with a fresh object, row counts from
metadata, and bad input as one line before a run directory is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sl_helpers import write_jsonl
from typer.testing import CliRunner

from cookbook_cli.data.builders import HfBuilder
from cookbook_cli.errors import CookbookError

ROWS = 120


def messages(i: int) -> list[dict]:
    turns = [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": f"answer {i}."}]
    return turns * (1 + i % 2)  # one or two turns


def write_parquet(path: Path, n: int = ROWS, bad: dict[int, list] | None = None, column: str = "messages") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [(bad or {}).get(i, messages(i)) for i in range(n)]
    pq.write_table(pa.table({column: rows, "id": list(range(n))}), str(path), row_group_size=32)
    return path


def build(path: Path, renderer, batch_size: int = 8, seed: int = 3, **fields):
    options = {"streaming": True, "shuffle_buffer": 16, **fields}
    return HfBuilder(path=str(path), **options).build(renderer, batch_size, None, "all_assistant_messages", seed=seed)


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    return write_parquet(tmp_path_factory.mktemp("stream") / "chats.parquet")


@pytest.fixture(scope="module")
def row_of(renderer):
    """Row number of a datum, by its token sequence (every row's text is unique)."""
    from cookbook_cli.conversations import parse_conversation

    lookup = {}
    for i in range(ROWS):
        tokens, _ = renderer.build_supervised_tokens(parse_conversation({"messages": messages(i)}, "x").messages, "all_assistant_messages")
        lookup[tuple(tokens[:-1])] = i
    return lambda datum: lookup[tuple(datum.model_input.to_ints())]


def epoch_rows(ds, row_of, epoch: int) -> list[list[int]]:
    ds.set_epoch(epoch)
    return [[row_of(d) for d in ds.get_batch(i)] for i in range(len(ds))]


def test_len_comes_from_the_parquet_footer_and_the_order_is_seeded_per_epoch(parquet, renderer, row_of):
    train, test = build(parquet, renderer)
    assert test is None and len(train) == ROWS // 8
    e0, e1 = epoch_rows(train, row_of, 0), epoch_rows(train, row_of, 1)
    again, _ = build(parquet, renderer)
    assert epoch_rows(again, row_of, 0) == e0 and epoch_rows(again, row_of, 1) == e1
    assert e0 != e1 and epoch_rows(build(parquet, renderer, seed=4)[0], row_of, 0) != e0
    for rows in (e0, e1):
        flat = [r for batch in rows for r in batch]
        assert len(flat) == len(set(flat)) == ROWS  # 120 rows in 15 batches: each exactly once
    assert e0 != sorted(e0)  # shuffled, not the file order


def test_the_order_is_datasets_buffered_shuffle(parquet, renderer, row_of):
    import datasets

    train, _ = build(parquet, renderer, shuffle_buffer=50)
    stream = datasets.load_dataset("parquet", data_files={"train": str(parquet)}, split="train", streaming=True)
    stream = stream.shuffle(seed=3, buffer_size=50)
    stream.set_epoch(2)
    want = [row["id"] for row in stream]
    assert [r for batch in epoch_rows(train, row_of, 2) for r in batch] == want


def test_held_out_rows_are_the_first_rows_and_never_trained(parquet, renderer, row_of):
    train, test = build(parquet, renderer, test_size=10, max_rows=100)
    assert test is not None and [c.messages[0]["content"] for c in test.conversations] == [f"question {i}?" for i in range(10)]
    assert train.num_rows == 90 and len(train) == 11
    for epoch in (0, 1):
        flat = [r for batch in epoch_rows(train, row_of, epoch) for r in batch]
        assert len(flat) == len(set(flat)) == 88 and min(flat) >= 10 and max(flat) < 100


def test_a_fresh_dataset_resumes_at_any_batch_exactly(parquet, renderer, row_of):
    walked, _ = build(parquet, renderer, test_size=8)
    want = epoch_rows(walked, row_of, 1)
    for k in (0, 5, len(want) - 1):
        fresh, _ = build(parquet, renderer, test_size=8)  # as after a restart: its first call is build_batch(k)
        fresh.set_epoch(1)
        assert [[row_of(d) for d in fresh.get_batch(i)] for i in range(k, len(want))] == want[k:]
    # A backward jump re-opens the stream; datums are equal, not just rows.
    a = walked.get_batch(3)
    walked.get_batch(9)
    b = walked.get_batch(3)
    assert [d.model_input.to_ints() for d in a] == [d.model_input.to_ints() for d in b]
    assert [d.loss_fn_inputs["weights"].data for d in a] == [d.loss_fn_inputs["weights"].data for d in b]


def test_rows_are_counted_from_num_rows_when_no_metadata_says(tmp_path, renderer):
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": messages(i)} for i in range(40)])
    with pytest.raises(CookbookError, match="does not say how many rows it has; set dataset.num_rows=N"):
        build(path, renderer)
    assert len(build(path, renderer, num_rows=40)[0]) == 5
    assert len(build(path, renderer, max_rows=24)[0]) == 3
    overstated, _ = build(path, renderer, num_rows=48)
    overstated.get_batch(4)
    with pytest.raises(CookbookError, match=r"ended after 40 training rows but is counted as 48; set dataset.num_rows"):
        overstated.get_batch(5)


def test_a_bad_row_after_the_first_chunk_fails_at_its_batch_naming_its_row(tmp_path, renderer):
    bad = [{"role": "narrator", "content": "x"}]
    path = write_parquet(tmp_path / "late.parquet", n=400, bad={300: bad})
    train, _ = build(path, renderer, batch_size=50, shuffle_buffer=1)  # buffer 1: the file's order
    for i in range(6):
        train.get_batch(i)
    with pytest.raises(CookbookError, match=r"late.parquet\[train\] row 300: messages\[0\]: field 'role'") as e:
        train.get_batch(6)
    assert "\n" not in str(e.value)


def test_no_robots_streams_its_train_split_and_reads_its_test_split(tmp_path, renderer):
    from cookbook_cli.data.builders import NoRobotsBuilder

    folder = tmp_path / "no_robots"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"messages": messages(i), "category": "Chat"} for i in range(24)])
    write_jsonl(folder / "test.jsonl", [{"messages": messages(i), "category": "Chat"} for i in range(100, 105)])
    train, test = NoRobotsBuilder(path=str(folder), streaming=True, num_rows=24).build(renderer, 4, None, "all_assistant_messages")
    assert len(train) == 6 and test is not None and len(test.conversations) == 5
    assert test.conversations[0].messages[0]["content"] == "question 100?"
    assert sum(len(train.get_batch(i)) for i in range(len(train))) == 24


def test_the_in_memory_path_is_unchanged_by_the_new_fields(parquet, renderer):
    train, test = HfBuilder(path=str(parquet), test_size=8).build(renderer, 8, None, "all_assistant_messages", seed=3)
    assert type(train).__name__ == "ConversationDataset" and len(train.conversations) == ROWS - 8


# -- through the CLI ------------------------------------------------------------------------------------

runner = CliRunner()
CLI = ["train", "sl", "--renderer", "llama3", "--dataset", "hf", "--batch-size", "4", "--lr", "0.05", "--save-every", "2",
       "--eval-every", "2", "--max-length", "64", "--if-exists", "resume", "lr_schedule=constant", "dataset.streaming=true",
       "dataset.shuffle_buffer=32", "dataset.test_size=8"]


def cli(parquet: Path, log_dir: Path, steps: int, *extra: str):
    return runner.invoke(app(), [*CLI, "--log-dir", str(log_dir), "--max-steps", str(steps), f"dataset.path={parquet}", *extra])


def app():
    from cookbook_cli.cli.main import app as cookbook

    return cookbook


def metrics(log_dir: Path) -> list[dict]:
    timing = ("tokens_per_s", "step_time", "elapsed")
    rows = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in timing} for r in rows if not r.get("final")]


def test_a_streamed_run_stopped_at_2_and_resumed_to_4_equals_a_straight_4(parquet, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("COOKBOOK_LOAD_PLUGINS", "")
    straight = cli(parquet, tmp_path / "straight", 4)
    assert straight.exit_code == 0, straight.output
    first = cli(parquet, tmp_path / "resumed", 2)
    assert first.exit_code == 0, first.output
    second = cli(parquet, tmp_path / "resumed", 4)
    assert second.exit_code == 0, second.output
    assert "Resuming from checkpoint" in second.output
    got, want = metrics(tmp_path / "resumed"), metrics(tmp_path / "straight")
    assert [r["step"] for r in want] == [0, 1, 2, 3] and got == want
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["dataset"]["streaming"] is True and config["dataset"]["shuffle_buffer"] == 32


def _bad_missing_column(tmp: Path) -> Path:
    return write_parquet(tmp / "d.parquet", column="chat")


def _bad_first_chunk_row(tmp: Path) -> Path:
    return write_parquet(tmp / "d.parquet", bad={5: [{"role": "robot", "content": "beep"}]})


def _jsonl(tmp: Path) -> Path:
    return write_jsonl(tmp / "d.jsonl", [{"messages": messages(i)} for i in range(20)])


BAD = [
    ("missing-column", _bad_missing_column, [], ("has no column 'messages'", "chat", "dataset.messages_field")),
    ("bad-row-in-first-chunk", _bad_first_chunk_row, [], ("d.parquet[train] row 5: messages[0]: field 'role'", "robot")),
    ("fraction-test-size", write_parquet, ["dataset.test_size=0.1"], ("dataset.test_size=0.1 is a fraction", "number of rows")),
    ("unknown-num-rows", _jsonl, [], ("split 'train' does not say how many rows", "dataset.num_rows")),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_streamed_input_is_one_line_before_the_run_directory(case, tmp_path, monkeypatch):
    _, make, extra, expected = case
    monkeypatch.setenv("COOKBOOK_LOAD_PLUGINS", "")
    path = make(tmp_path) if make is not write_parquet else make(tmp_path / "d.parquet")
    args = ["train", "sl", "--dataset", "hf", f"dataset.path={path}", "dataset.streaming=true", "--max-steps", "1",
            "--log-dir", str(tmp_path / "run"), *extra]
    result = runner.invoke(app(), args)
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out and (result.exception is None or isinstance(result.exception, SystemExit)), repr(result.exception)
    errors = [ln for ln in out.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, out
    for text in expected:
        assert text in errors[0], errors[0]
    assert not (tmp_path / "run").exists()
