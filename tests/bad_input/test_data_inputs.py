"""Bad data files through the CLI (issue 11, the data layer): each case exits 1
with one `Error: ...` line, no traceback, naming the file (and line and field
where there is one); `train sl` cases fail before a model loads or a run
directory is written. Files cookbook must accept (a UTF-8 BOM, CRLF line
endings, blank lines) are checked the same way, with exit status 0."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

runner = CliRunner()


def conv(user: str, assistant: str | None = "fine") -> dict:
    msgs = [{"role": "user", "content": user}]
    if assistant is not None:
        msgs.append({"role": "assistant", "content": assistant})
    return {"messages": msgs}


GOOD = [json.dumps(conv(f"question {i}", f"answer {i}")) for i in range(12)]


def lines(*rows: str | dict, sep: str = "\n") -> str:
    return sep.join(r if isinstance(r, str) else json.dumps(r) for r in rows) + sep


def tool_call_row(arguments: object) -> dict:
    call = {"id": "c1", "type": "function", "function": {"name": "get", "arguments": arguments}}
    return {
        "messages": [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": "", "tool_calls": [call]}],
        "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
    }


def thinking_row() -> dict:
    return {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "hmm"}]}


def tiny_tokenizer_dir(tmp: Path, **replace: str) -> Path:
    """A copy of the small tokenizer shipped for scaffolds, with some files replaced."""
    src = Path(str(resources.files("cookbook_cli.scaffold").joinpath("tiny_chatml")))
    dst = tmp / "tok"
    shutil.copytree(src, dst)
    for name, text in replace.items():
        (dst / name).write_bytes(text.encode("latin-1"))
    return dst


@dataclass
class Case:
    id: str
    #: files to write under tmp_path: name -> text (str, written as UTF-8) or raw bytes
    files: dict[str, str | bytes]
    #: the command line, with {tmp} standing for tmp_path
    args: list[str]
    #: every string that the error line must contain ({tmp} as above)
    expected: tuple[str, ...]
    setup: Callable[[Path], None] | None = None


def train(file: str, *extra: str) -> list[str]:
    return ["train", "sl", "--dataset", f"{{tmp}}/{file}", "--max-steps", "1", "--log-dir", "{tmp}/run", *extra]


def render(file: str, *extra: str) -> list[str]:
    return ["renderers", "render", "llama3", "-c", f"{{tmp}}/{file}", "--json", *extra]


NON_UTF8 = lines(*GOOD[:1]).encode() + b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n'

CASES = [
    # -- encoding and framing ----------------------------------------------------------
    Case("non-utf8/train", {"d.jsonl": NON_UTF8}, train("d.jsonl"), ("{tmp}/d.jsonl:2: not UTF-8 text", "byte 0xe9", "save")),
    Case("non-utf8/render", {"d.jsonl": NON_UTF8}, render("d.jsonl"), ("{tmp}/d.jsonl:2: not UTF-8 text",)),
    Case("empty file", {"d.jsonl": ""}, train("d.jsonl"), ("{tmp}/d.jsonl", "holds no conversations")),
    Case("only blank lines and a BOM", {"d.jsonl": b"\xef\xbb\xbf\n\r\n\n"}, train("d.jsonl"), ("holds no conversations",)),
    Case("directory as file/render", {}, render("sub"), ("{tmp}/sub", "is a directory"), setup=lambda t: (t / "sub").mkdir()),
    Case("missing file/render", {}, render("nope.jsonl"), ("{tmp}/nope.jsonl", "does not exist")),
    Case("binary file named .jsonl", {"d.jsonl": b"PAR1\x15\x04\x15\x10\x15\x14L\x15"}, train("d.jsonl"), ("{tmp}/d.jsonl:1: malformed JSON",)),
    Case("a BOM on a later line", {"d.jsonl": lines(GOOD[0]) + "\ufeff" + GOOD[1] + "\n"}, train("d.jsonl"), ("{tmp}/d.jsonl:2: malformed JSON",)),
    # -- line shapes -----------------------------------------------------------------
    Case("line is a JSON array", {"d.jsonl": lines(*GOOD[:3], "[1, 2]")}, train("d.jsonl"), ("{tmp}/d.jsonl:4:", "got an array")),
    Case("line is a JSON string", {"d.jsonl": lines(GOOD[0], '"hello"')}, render("d.jsonl"), ("{tmp}/d.jsonl:2:", "got a string")),
    Case("messages not a list", {"d.jsonl": lines(GOOD[0], {"messages": "hi"})}, train("d.jsonl"), ("{tmp}/d.jsonl:2: field 'messages'",)),
    Case("unknown role", {"d.jsonl": lines(GOOD[0], {"messages": [{"role": "bot", "content": "x"}]})}, train("d.jsonl"),
         ("{tmp}/d.jsonl:2: messages[0]: field 'role'", "'bot'")),
    Case("content a number", {"d.jsonl": lines(GOOD[0], {"messages": [{"role": "user", "content": 7}]})}, train("d.jsonl"),
         ("{tmp}/d.jsonl:2: messages[0]: field 'content'", "int")),
    Case("content part of unknown type", {"d.jsonl": lines({"messages": [{"role": "user", "content": [{"type": "image"}]}]})},
         render("d.jsonl"), ("{tmp}/d.jsonl:1: messages[0]: field 'content[0]'",)),
    Case("tools not a list", {"d.jsonl": lines(GOOD[0], {**conv("q"), "tools": {"name": "f"}})}, train("d.jsonl"),
         ("{tmp}/d.jsonl:2: field 'tools' must be a list", "dict")),
    Case("tool without a name", {"d.jsonl": lines({**conv("q"), "tools": [{"type": "function", "function": {}}]})}, train("d.jsonl"),
         ("{tmp}/d.jsonl:1: field 'tools[0]'", "function.name")),
    Case("tool parameters not an object", {"d.jsonl": lines({**conv("q"), "tools": [{"function": {"name": "f", "parameters": "x"}}]})},
         train("d.jsonl"), ("{tmp}/d.jsonl:1: field 'tools[0]'", "function.parameters")),
    # -- tool-call arguments are checked when the file is read, not when it renders ------
    Case("tool-call arguments not JSON/train", {"d.jsonl": lines(*GOOD[:5], tool_call_row("{city: Oslo}"))}, train("d.jsonl"),
         ("{tmp}/d.jsonl:6: messages[1]: field 'tool_calls[0]'", "not valid JSON", "{city: Oslo}")),
    Case("tool-call arguments not JSON/render", {"d.jsonl": lines(tool_call_row("{city: Oslo}"))}, render("d.jsonl"),
         ("{tmp}/d.jsonl:1: messages[1]: field 'tool_calls[0]'", "not valid JSON")),
    Case("tool-call arguments a JSON array", {"d.jsonl": lines(tool_call_row("[1, 2]"))}, render("d.jsonl"),
         ("{tmp}/d.jsonl:1: messages[1]: field 'tool_calls[0]'", "must be a JSON object")),
    Case("tool-call arguments a number", {"d.jsonl": lines(tool_call_row(5))}, render("d.jsonl"),
         ("{tmp}/d.jsonl:1: messages[1]: field 'tool_calls[0]'", "got int")),
    # -- errors found while rendering name the file and line --------------------------
    # 13 rows, test_size 0.1, seed 0: row 10 (line 11) is the one held out (see test_held_out_row)
    Case("renderer refuses a train row", {"d.jsonl": lines(GOOD[0], thinking_row(), *GOOD[1:])}, train("d.jsonl"),
         ("{tmp}/d.jsonl:2: renderer 'llama3' has no thinking format",)),
    Case("renderer refuses a test row", {"d.jsonl": lines(*GOOD[:10], thinking_row(), *GOOD[10:])}, train("d.jsonl"),
         ("{tmp}/d.jsonl:11: renderer 'llama3' has no thinking format",)),
    Case("renderer refuses a row/render", {"d.jsonl": lines(GOOD[0], thinking_row())}, render("d.jsonl"),
         ("{tmp}/d.jsonl:2: renderer 'llama3' has no thinking format",)),
    Case("no assistant message for last_assistant_message", {"d.jsonl": lines(GOOD[0], conv("q", None))}, render("d.jsonl"),
         ("{tmp}/d.jsonl:2: train_on_what=last_assistant_message needs an assistant message",)),
    # -- nothing to train on -------------------------------------------------------------
    Case("only user rows", {"d.jsonl": lines(*[conv(f"q{i}", None) for i in range(12)])}, train("d.jsonl"),
         ("{tmp}/d.jsonl has nothing to train on", "11 have no message that train_on_what=all_assistant_messages trains")),
    Case("only user and system rows, no test split", {"d.jsonl": lines(*[{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}] * 3)},
         train("d.jsonl", "dataset.test_size=0"), ("has nothing to train on: none of its 3 training rows", "3 have no message")),
    Case("everything cut by --max-length", {"d.jsonl": lines(*[conv("word " * 60, "yes") for _ in range(12)])},
         train("d.jsonl", "--max-length", "16"), ("has nothing to train on", "11 have every trained token past max_length=16", "raise --max-length")),
    # -- tokenizers ----------------------------------------------------------------------
    Case("corrupt tokenizer.json file", {"good.jsonl": lines(GOOD[0]), "tokenizer.json": '{"version": "1.0", "model": '},
         render("good.jsonl", "--tokenizer", "{tmp}/tokenizer.json"), ("cannot load tokenizer '{tmp}/tokenizer.json'", "tokenizer.json")),
    Case("corrupt tokenizer.json in a folder", {"good.jsonl": lines(GOOD[0]), "tdir/tokenizer.json": "not json at all"},
         render("good.jsonl", "-t", "{tmp}/tdir"), ("cannot load tokenizer '{tmp}/tdir/tokenizer.json'",)),
    Case("a JSON file that is not a tokenizer", {"good.jsonl": lines(GOOD[0]), "tokenizer.json": '{"hello": 1}'},
         render("good.jsonl", "-t", "{tmp}/tokenizer.json"), ("cannot load tokenizer '{tmp}/tokenizer.json'",)),
    Case("corrupt tokenizer.json of --model DIR", {"m/tokenizer.json": '{"version": "1.0", "truncation": nul', "m/config.json": "{}"},
         ["train", "sl", "--model", "{tmp}/m", "--renderer", "llama3", "--max-steps", "1", "--log-dir", "{tmp}/run"],
         ("cannot load tokenizer '{tmp}/m/tokenizer.json'",)),
    Case("malformed tokenizer_config.json", {"good.jsonl": lines(GOOD[0])}, render("good.jsonl", "-t", "{tmp}/tok"),
         ("{tmp}/tok/tokenizer_config.json: malformed JSON",), setup=lambda t: tiny_tokenizer_dir(t, **{"tokenizer_config.json": "{oops"})),
    Case("non-UTF-8 chat_template.jinja", {"good.jsonl": lines(GOOD[0])}, render("good.jsonl", "-t", "{tmp}/tok"),
         ("{tmp}/tok/chat_template.jinja: not UTF-8",), setup=lambda t: tiny_tokenizer_dir(t, **{"chat_template.jinja": "caf\xe9"})),
    # -- Hugging Face files through the hf builder ---------------------------------------
    Case("hf file without a messages column", {"d.json": lines({"text": "x"}, {"text": "y"})}, train("d.json"),
         ("{tmp}/d.json", "has no column 'messages'", "columns: text", "dataset.messages_field")),
    Case("hf messages column of strings", {"d.json": lines({"messages": "x"}, {"messages": "y"})}, train("d.json"),
         ("{tmp}/d.json[train] row 0: field 'messages'",)),
    Case("hf unknown role", {"d.json": lines(conv("q"), {"messages": [{"role": "bot", "content": "x"}]})}, train("d.json"),
         ("{tmp}/d.json[train] row 1: messages[0]: field 'role'",)),
    Case("a parquet file that is not one", {"d.parquet": "this is text"}, train("d.parquet"), ("{tmp}/d.parquet", "parquet")),
    Case("an empty folder as --dataset", {}, train("sub"), ("{tmp}/sub",), setup=lambda t: (t / "sub").mkdir()),
    Case("a folder of text files as --dataset", {"sub/notes.txt": "hello\n"}, train("sub"), ("{tmp}/sub", "has no column 'messages'")),
]


def _materialise(case: Case, tmp: Path) -> list[str]:
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    if case.setup is not None:
        case.setup(tmp)
    return [a.replace("{tmp}", str(tmp)) for a in case.args]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, tmp_path: Path) -> None:
    result = runner.invoke(app, _materialise(case, tmp_path))
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out and (result.exception is None or isinstance(result.exception, SystemExit)), repr(result.exception)
    errors = [ln for ln in out.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, out
    for text in case.expected:
        assert text.replace("{tmp}", str(tmp_path)) in errors[0], errors[0]
    assert not (tmp_path / "run").exists(), "a train sl data error must fail before the run directory is made"


ACCEPTED = [
    Case("UTF-8 BOM at the start", {"d.jsonl": "\ufeff" + lines(*GOOD[:2])}, render("d.jsonl"), ()),
    Case("CRLF line endings", {"d.jsonl": lines(*GOOD[:2], sep="\r\n")}, render("d.jsonl"), ()),
    Case("blank lines", {"d.jsonl": "\n" + lines(*GOOD[:2], sep="\n\n") + "\n \n"}, render("d.jsonl"), ()),
]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_accepted_input(case: Case, tmp_path: Path) -> None:
    result = runner.invoke(app, _materialise(case, tmp_path))
    assert result.exit_code == 0, result.output
    rendered = [json.loads(ln) for ln in result.output.splitlines() if ln.startswith("{")]
    assert len(rendered) == 2 and all(r["tokens"] for r in rendered)


def test_bom_crlf_and_blank_lines_load_the_same_conversations(tmp_path: Path) -> None:
    """The accepted variants of a file read back exactly as the plain file does, line numbers included."""
    from cookbook_cli.conversations import load_conversations

    plain = tmp_path / "plain.jsonl"
    plain.write_text(lines(*GOOD[:3]), encoding="utf-8")
    variant = tmp_path / "variant.jsonl"
    variant.write_bytes(b"\xef\xbb\xbf" + lines(*GOOD[:3], sep="\r\n").encode())
    a, b = load_conversations(plain), load_conversations(variant)
    assert a == b
    assert [c.source for c in b] == [f"{variant}:{i}" for i in (1, 2, 3)]


def test_held_out_row() -> None:
    """The 'test row' case above relies on the seeded split holding out row 10 of 13."""
    from cookbook_cli.data.supervised import split_train_test

    assert split_train_test(list(range(13)), 0.1, 0)[1] == [10]


def test_tool_call_arguments_as_an_object_or_empty_are_accepted(tmp_path: Path) -> None:
    from cookbook_cli.conversations import load_conversations

    path = tmp_path / "d.jsonl"
    path.write_text(lines(tool_call_row({"city": "Oslo"}), tool_call_row(""), tool_call_row(None)), encoding="utf-8")
    calls = [c.messages[1]["tool_calls"][0] for c in load_conversations(path)]
    assert [c.arguments_dict() for c in calls] == [{"city": "Oslo"}, {}, {}]
