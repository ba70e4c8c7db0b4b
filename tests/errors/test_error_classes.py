"""Failures by class, through the CLI (issue 24): each case exits non-zero with
exactly one `Error: ...` line on stderr, no traceback, and nothing left behind
(no run directory, output or cache under the working folder). The classes are
OS errors on any path argument, text that is not Unicode, pathological JSON,
oversized lines, conversations a renderer would mis-render, and bad export
sizes. Refusal times are printed (`-s`), not asserted: the machine is shared."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

LONG = "p" * 5000  # one path component far over NAME_MAX (255)
DEEP = "[" * 100_000
TINY = ("--model", "random:tiny:llama3")


def conv(*messages: dict) -> str:
    return json.dumps({"messages": list(messages)})


U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}
GOOD = conv(U, A)
SURROGATE = '{"messages": [{"role": "user", "content": "bad \\ud800 half"}, {"role": "assistant", "content": "x"}]}'
PREFERENCE_SURROGATE = '{"prompt": [{"role": "user", "content": "q \\udfff"}], "chosen": "a", "rejected": "b"}'


@dataclass
class Case:
    id: str
    args: list[str]  # {tmp} stands for the test's folder, {tok} for the tiny tokenizer
    expected: tuple[str, ...] = ()  # each must be in the error line
    files: dict[str, str | bytes] | None = None
    stdin: bytes | None = None


def _tiny_tok() -> str:
    from cookbook_cli.scaffold import tiny_tokenizer_path

    return str(tiny_tokenizer_path())


def render(file: str = "{tmp}/c.jsonl") -> list[str]:
    return ["renderers", "render", "hf_template", "-c", file, "-t", "{tok}"]  # the tiny tokenizer's own template


def train_sl(*extra: str, data: str = "{tmp}/c.jsonl") -> list[str]:
    return ["train", "sl", *TINY, "--dataset", data, "--max-steps", "1", "--log-dir", "{tmp}/run", *extra]


def sample(*extra: str, prompts: str = "{tmp}/p.jsonl", out: str = "{tmp}/s.jsonl") -> list[str]:
    return ["sample", *TINY, "--prompts", prompts, "--out", out, *extra]


def distill(prompts: str = "{tmp}/p.jsonl", *extra: str) -> list[str]:
    return ["train", "distill", *TINY, "--teacher", "random:tiny:llama3", "--prompts", prompts, "--max-steps", "1",
            "--log-dir", "{tmp}/run", *extra]


def dpo(data: str = "{tmp}/d.jsonl", *extra: str) -> list[str]:
    return ["train", "dpo", *TINY, "--dataset", data, "--max-steps", "1", "--log-dir", "{tmp}/run", *extra]


FILES = {"c.jsonl": (GOOD + "\n") * 12, "p.jsonl": conv(U) + "\n", "d.jsonl": json.dumps(
    {"prompt": [U], "chosen": "yes", "rejected": "no"}) + "\n", "a_file": "x"}

OS_PATHS = [
    Case("train sl --log-dir", train_sl(data="{tmp}/c.jsonl")[:-2] + ["--log-dir", f"{{tmp}}/{LONG}"], ("File name too long", "--log-dir")),
    Case("train sl --dataset", train_sl(data=f"{{tmp}}/{LONG}.jsonl"), ()),
    Case("train sl --model", ["train", "sl", "--model", f"{{tmp}}/{LONG}", "--max-steps", "1", "--log-dir", "{tmp}/run"], ()),
    Case("train rl --log-dir", ["train", "rl", *TINY, "--env", "arithmetic", "--max-steps", "1", "--log-dir", f"{{tmp}}/{LONG}/run"], ("File name too long",)),
    Case("train dpo --dataset", dpo(f"{{tmp}}/{LONG}.jsonl"), ()),
    Case("train dpo --log-dir", ["train", "dpo", *TINY, "--dataset", "{tmp}/d.jsonl", "--log-dir", f"{{tmp}}/{LONG}"], ()),
    Case("train distill --prompts", distill(f"{{tmp}}/{LONG}.jsonl"), ()),
    Case("sample --prompts", sample(prompts=f"{{tmp}}/{LONG}.jsonl"), ()),
    Case("sample --out", sample(out=f"{{tmp}}/{LONG}.jsonl"), ("File name too long",)),
    Case("sample --out under a file", sample(out="{tmp}/a_file/s.jsonl"), ()),
    Case("sample --out a directory", sample(out="{tmp}"), ()),
    Case("export RUN", ["export", f"{{tmp}}/{LONG}", "--out", "{tmp}/x"], ()),
    Case("export --out", ["export", "{tmp}", "--out", f"{{tmp}}/{LONG}"], ()),
    Case("eval --run", ["eval", "--run", f"{{tmp}}/{LONG}", "nll"], ()),
    Case("eval --out", ["eval", *TINY, "--out", f"{{tmp}}/{LONG}", "arithmetic"], ()),
    Case("chat --run", ["chat", "--run", f"{{tmp}}/{LONG}"], ()),
    Case("renderers render -c", render(f"{{tmp}}/{LONG}.jsonl"), ()),
    Case("renderers render -t", ["renderers", "render", "llama3", "-c", "{tmp}/c.jsonl", "-t", f"{{tmp}}/{LONG}"], ()),
    Case("renderers check --template", ["renderers", "check", "llama3", "-t", "{tok}", "--template", f"{{tmp}}/{LONG}.jinja"], ()),
    Case("renderers check -c", ["renderers", "check", "llama3", "-t", "{tok}", "-c", f"{{tmp}}/{LONG}.jsonl"], ()),
    Case("runs list", ["runs", "list", f"{{tmp}}/{LONG}"], ()),
    Case("runs show", ["runs", "show", f"{{tmp}}/{LONG}"], ()),
    Case("plugins new --dir", ["plugins", "new", "renderer", "acme_fmt", "--dir", f"{{tmp}}/{LONG}"], ()),
    Case("plugins new --dir under a file", ["plugins", "new", "renderer", "acme_fmt", "--dir", "{tmp}/a_file/pkg"], ()),
]

NOT_UNICODE = [
    Case("conversation/render", render(), ("c.jsonl:2", "lone surrogate"), files={"c.jsonl": GOOD + "\n" + SURROGATE + "\n"}),
    Case("conversation/train sl", train_sl(), ("c.jsonl:3", "lone surrogate"), files={"c.jsonl": (GOOD + "\n") * 2 + SURROGATE + "\n"}),
    Case("conversation/renderers check", ["renderers", "check", "llama3", "-t", "{tok}", "-c", "{tmp}/c.jsonl"], ("c.jsonl:1", "lone surrogate"),
         files={"c.jsonl": SURROGATE + "\n"}),
    Case("prompts/sample", sample(), ("p.jsonl:1", "lone surrogate"), files={"p.jsonl": SURROGATE.replace(', {"role": "assistant", "content": "x"}', "") + "\n"}),
    Case("prompts/distill", distill(), ("p.jsonl:1", "lone surrogate"), files={"p.jsonl": SURROGATE.replace(', {"role": "assistant", "content": "x"}', "") + "\n"}),
    Case("comparisons/dpo", dpo(), ("d.jsonl:1", "lone surrogate"), files={"d.jsonl": PREFERENCE_SURROGATE + "\n"}),
    Case("surrogate in a key", render(), ("c.jsonl:1", "lone surrogate"), files={"c.jsonl": '{"messages": [{"role": "user", "content": "x"}], "\\udc80": 1}\n'}),
    Case("latin-1 bytes/render", render(), ("c.jsonl:1", "not UTF-8"), files={"c.jsonl": b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n'}),
    Case("utf-16 file/sample", sample(), ("p.jsonl:1", "not UTF-8"), files={"p.jsonl": (conv(U) + "\n").encode("utf-16")}),
    Case("latin-1 bytes/dpo", dpo(), ("d.jsonl:1", "not UTF-8"), files={"d.jsonl": b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'}),
    Case("chat stdin bytes", ["chat", *TINY], ("standard input:1", "not UTF-8"), stdin=b"\xff\xfe hello\n"),
    Case("chat stdin second line", ["chat", *TINY, "--max-tokens", "2"], ("standard input:2", "not UTF-8"), stdin=b"hello\n\xc3\x28\n"),
    Case("argument with undecodable bytes", ["renderers", "render", "llama3\udcff", "-c", "{tmp}/c.jsonl", "-t", "{tok}"], ("llama3",)),
    Case("config word with undecodable bytes", train_sl("dataset.test_size=\udcff"), ()),
]

DEEP_JSON = [
    Case("conversation/render", render(), ("c.jsonl:1", "nested too deeply"), files={"c.jsonl": DEEP + "\n"}),
    Case("conversation/train sl", train_sl(), ("c.jsonl:2", "nested too deeply"), files={"c.jsonl": GOOD + "\n" + '{"messages": ' + DEEP + "\n"}),
    Case("conversation/renderers check", ["renderers", "check", "llama3", "-t", "{tok}", "-c", "{tmp}/c.jsonl"], ("c.jsonl:1", "nested too deeply"),
         files={"c.jsonl": '{"a": ' + "{\"a\": " * 50_000 + "\n"}),
    Case("prompts/sample", sample(), ("p.jsonl:1", "nested too deeply"), files={"p.jsonl": DEEP + "\n"}),
    Case("prompts/distill", distill(), ("p.jsonl:1", "nested too deeply"), files={"p.jsonl": DEEP + "\n"}),
    Case("comparisons/dpo", dpo(), ("d.jsonl:1", "nested too deeply"), files={"d.jsonl": DEEP + "\n"}),
    Case("deep but closed", render(), ("c.jsonl:1", "nested too deeply"), files={"c.jsonl": "[" * 30_000 + "]" * 30_000 + "\n"}),
    Case("deep inside content", render(), ("c.jsonl:1",), files={"c.jsonl": '{"messages": [{"role": "user", "content": ' + "[" * 900 + "]" * 900 + "}]}\n"}),
]

CONVERSATIONS = [
    Case("content null on a user message", render(), ("c.jsonl:1", "messages[0]", "'content' is null"), files={"c.jsonl": conv({"role": "user", "content": None}, A) + "\n"}),
    Case("content missing/train sl", train_sl(), ("c.jsonl:2", "messages[1]", "'content' is missing"), files={"c.jsonl": GOOD + "\n" + conv(U, {"role": "assistant"}) + "\n" + (GOOD + "\n") * 10}),
    Case("content null on a system message/sample", sample(), ("p.jsonl:1", "'content' is null"), files={"p.jsonl": conv({"role": "system", "content": None}, U) + "\n"}),
    Case("tool result with no call", render(), ("c.jsonl:1", "message 2 is a tool result with no assistant tool call before it"),
         files={"c.jsonl": conv(U, A, {"role": "tool", "content": "42", "tool_call_id": "c1"}) + "\n"}),
    Case("tool result first/train sl", ["train", "sl", "--model", "random:tiny:{tok}", "--renderer", "hf_template", "--dataset",
                                        "{tmp}/c.jsonl", "--max-steps", "1", "--log-dir", "{tmp}/run"],
         ("c.jsonl:12", "message 0 is a tool result with no assistant tool call"),
         files={"c.jsonl": (GOOD + "\n") * 11 + conv({"role": "tool", "content": "42"}, A) + "\n"}),
    Case("tool result for another call", render(), ("c.jsonl:1", "tool_call_id 'other'", "its calls: c1"),
         files={"c.jsonl": conv(U, {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                                {"role": "tool", "content": "42", "tool_call_id": "other"}) + "\n"}),
    Case("prompt ending in a system message", sample(), ("p.jsonl:1", "ends with a system message"), files={"p.jsonl": conv(U, {"role": "system", "content": "be brief"}) + "\n"}),
    Case("plugins new with a registered name", ["plugins", "new", "renderer", "llama3", "--dir", "{tmp}/pkg"], ("renderer 'llama3' is already registered by 'cookbook-cli'",)),
]

EXPORT = [
    Case("export --max-shard-size lots", ["export", "{tmp}/no-run", "--out", "{tmp}/x", "--max-shard-size", "lots"], ("--max-shard-size 'lots' is not a size",)),
    Case("export --max-shard-size 0MB", ["export", "{tmp}/no-run", "--out", "{tmp}/x", "--max-shard-size", "0MB"], ("is no size: give more than zero",)),
    Case("export --max-shard-size -5GB", ["export", "{tmp}/no-run", "--out", "{tmp}/x", "--max-shard-size", "-5GB"], ("not a size",)),
    Case("export --max-shard-size 5XB", ["export", "{tmp}/no-run", "--out", "{tmp}/x", "--max-shard-size", "5XB"], ("not a size",)),
    Case("export --out under a file", ["export", "{tmp}/no-run", "--out", "{tmp}/a_file/x"], ("is a file, not a folder",)),
]

ALL = [("os", c) for c in OS_PATHS] + [("unicode", c) for c in NOT_UNICODE] + [("deep", c) for c in DEEP_JSON] + \
      [("conversations", c) for c in CONVERSATIONS] + [("export", c) for c in EXPORT]


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1 for p in root.rglob("*")}


@pytest.mark.parametrize("case", [c for _, c in ALL], ids=[f"{k}/{c.id}" for k, c in ALL])
def test_one_line_nothing_left_behind(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # default run and eval folders land here, where they are looked for
    for name, content in {**FILES, **(case.files or {})}.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8", newline="")
    before = _tree(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{tok}", _tiny_tok()) for a in case.args]
    start = time.monotonic()
    result = CliRunner().invoke(app, args, input=case.stdin)
    elapsed = time.monotonic() - start
    assert result.exit_code == 1, (result.exit_code, result.output, repr(result.exception))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.stderr
    for text in case.expected:
        assert text in lines[0], lines[0]
    assert _tree(tmp_path) == before, "nothing is left behind"
    print(f"{case.id}: refused in {elapsed:.2f}s: {lines[0][:200]}")


@pytest.mark.parametrize("command", ["render", "train sl", "sample", "dpo"])
def test_a_line_too_large_is_refused_before_it_is_read_whole(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cookbook_cli import user_files

    monkeypatch.setattr(user_files, "MAX_LINE_BYTES", 1024 * 1024)  # a 1 MiB limit stands for the real 64 MiB one
    monkeypatch.chdir(tmp_path)
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}, A]}) + "\n"
    file = {"render": "c.jsonl", "train sl": "c.jsonl", "sample": "p.jsonl", "dpo": "d.jsonl"}[command]
    (tmp_path / file).write_text(FILES[file] + huge, encoding="utf-8")  # a good first line of the file's kind
    args = {"render": render(), "train sl": train_sl(), "sample": sample(), "dpo": dpo()}[command]
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)).replace("{tok}", _tiny_tok()) for a in args])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"{file}:{len(FILES[file].splitlines()) + 1}: line longer than 1 MiB" in line, line
    assert not (tmp_path / "run").exists() and not (tmp_path / "s.jsonl").exists()
