"""Bad comparison files through the `comparisons` builder (what `train dpo
--dataset FILE` calls before any model loads): each refused file is one
CookbookError naming the file, line and field; each file that is read with rows
left out (ties, empty completions, chosen equal to rejected) says so in a
warning and in `dataset.skipped`, and a file mixing both shapes is read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.builders import ComparisonsBuilder

U = {"role": "user", "content": "Hi, I am Ada."}


def line(a: str = "Hello, Ada!", b: str = "What?", label: str = "A", prompt: list | None = None) -> str:
    comparison = {"prompt_conversation": [U] if prompt is None else prompt,
                  "completion_A": [{"role": "assistant", "content": a}], "completion_B": [{"role": "assistant", "content": b}]}
    return json.dumps({"comparison": comparison, "label": label})


def trl(chosen: str = "Hello, Ada!", rejected: str = "What?") -> str:
    return json.dumps({"prompt": [U], "chosen": [{"role": "assistant", "content": chosen}], "rejected": [{"role": "assistant", "content": rejected}]})


GOOD = [line(label="A"), line("What?", "Hello, Ada!", "B"), line()]
BAD_CALL = json.dumps({"comparison": {"prompt_conversation": [U], "completion_A": [
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{x"}}]}],
    "completion_B": [{"role": "assistant", "content": "no"}]}, "label": "A"})


@dataclass
class Case:
    id: str
    content: str | bytes | None  # None: no file at all; "" an empty one
    expected: tuple[str, ...] = ()  # strings of the error ({f}: the file)
    skipped: dict[str, int] = field(default_factory=dict)  # for files that are read
    warning: str = ""
    batch_size: int = 1
    max_length: int | None = None


REFUSED = [
    Case("missing file", None, ("{f}", "does not exist")),
    Case("empty file", "", ("{f}", "holds no comparisons")),
    Case("non-UTF-8 byte", "\n".join(GOOD).encode() + b"\n" + line("cafe").encode().replace(b"cafe", b"caf\xe9") + b"\n", ("{f}:4: not UTF-8 text", "byte 0xe9")),
    Case("a JSON array line", "\n".join([GOOD[0], "[1]"]), ("{f}:2: expected a JSON object",)),
    Case("malformed JSON", "\n".join([GOOD[0], '{"comparison": ']), ("{f}:2: malformed JSON",)),
    Case("a conversation file", json.dumps({"messages": [U]}), ("{f}:1: not a comparison (keys: 'messages')",)),
    Case("an unknown label", "\n".join([GOOD[0], line(label="C")]), ("{f}:2: field 'label' must be \"A\", \"B\" or \"Tie\"; got 'C'",)),
    Case("prompt and completions all empty", "\n".join([GOOD[0], json.dumps({"prompt": [], "chosen": [], "rejected": []})]),
         ("{f}:2: the prompt and both completions are empty",)),
    Case("a user message in a completion", json.dumps({"prompt": "q", "chosen": [U], "rejected": "no"}), ("{f}:1: chosen[0]: a completion holds",)),
    Case("invalid tool-call arguments", BAD_CALL, ("{f}:1: comparison.completion_A[0]: field 'tool_calls[0]'", "not valid JSON")),
    Case("only ties", "\n".join([line(label="Tie"), line(label="tie")]), ("{f}", "no usable training comparisons (skipped: 2 tie)")),
    Case("only identical pairs", "\n".join([trl("same", "same")] * 2), ("no usable training comparisons (skipped: 2 chosen equals rejected)",)),
    Case("everything cut by max_length", "\n".join([line(prompt=[{"role": "user", "content": "word " * 50}])] * 2),
         ("{f} has nothing to train on", "max_length=16"), max_length=16),
    Case("fewer pairs than a batch", "\n".join(GOOD + [line(label="Tie")]), ("3 usable training comparisons, fewer than one batch of 4",), batch_size=4),
]

READ = [
    Case("a tie among good rows", "\n".join(GOOD + [line(label="Tie")]), skipped={"tie": 1}, warning="skipped 1 tie"),
    Case("an empty completion", "\n".join(GOOD + [line("", "What?")]), skipped={"empty completion": 1}, warning="skipped 1 empty completion"),
    Case("chosen equal to rejected", "\n".join(GOOD + [trl("Same.", "Same.")]), skipped={"chosen equals rejected": 1},
         warning="skipped 1 chosen equals rejected"),
    Case("both shapes mixed", "\n".join(GOOD + [trl(), trl()]), warning="mixes the two comparison shapes: 3 lines of comparison, 2 lines of prompt/chosen/rejected"),
    Case("BOM, CRLF and blank lines", b"\xef\xbb\xbf" + "\r\n\r\n".join(GOOD).encode() + b"\r\n\n"),
]


def _file(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "c.jsonl"
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(case.content + ("\n" if case.content else ""), encoding="utf-8")
    return path


def _build(path: Path, case: Case):
    from cookbook_cli.renderers import get_renderer

    return ComparisonsBuilder(path=str(path), test_size=0).build(get_renderer("llama3", "llama3"), case.batch_size, case.max_length, 0)


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_files_name_file_line_and_field(tmp_path: Path, case: Case) -> None:
    path = _file(tmp_path, case)
    with pytest.raises(CookbookError) as e:
        _build(path, case)
    message = str(e.value)
    assert "\n" not in message
    for text in case.expected:
        assert text.replace("{f}", str(path)) in message, message


@pytest.mark.parametrize("case", READ, ids=[c.id for c in READ])
def test_files_read_with_rows_left_out_say_so(tmp_path: Path, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    path = _file(tmp_path, case)
    with caplog.at_level(logging.WARNING, logger="cookbook_cli.preference"):
        train, test = _build(path, case)
    assert test is None and dict(train.skipped) == case.skipped
    assert train.num_rows == 3 + (2 if "mixed" in case.id else 0)
    if case.warning:
        assert case.warning in caplog.text
    else:
        assert not caplog.text
    assert all(c.label in ("A", "B") for c in train.comparisons)  # never a tie taken as B
