"""The one reader of files a user hands cookbook (conversations, prompts,
comparisons, JSON settings, `chat`'s standard input).

Every error is one line naming the place (`file:line`) and what to do. It
handles what a text editor or another tool may produce: a UTF-8 byte-order mark
(accepted), CRLF line endings (accepted), bytes that are not UTF-8, lone
surrogates written as JSON escapes (`"\\ud800"`, which Python decodes but no
tokenizer or file can encode), nesting deep enough to exhaust the parser's
recursion, and lines too large to hold.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cookbook_cli.errors import CookbookError

#: The longest line (in bytes) read from a line-per-record file; a longer one is
#: refused rather than read whole into memory.
MAX_LINE_BYTES = 64 * 1024 * 1024
#: The largest whole-file JSON document read (settings, adapter configs).
MAX_JSON_FILE_BYTES = 64 * 1024 * 1024

# A JSON escape of a UTF-16 surrogate: legal JSON, and a valid pair decodes to
# one character, so only lines holding one are searched for a lone half.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_path(path: Path, what: str) -> None:
    if not path.exists():
        raise CookbookError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise CookbookError(f"{str(path)!r} is a directory; give a {what}")


def _open(path: Path, what: str) -> IO[bytes]:
    _check_path(path, what)
    try:
        return path.open("rb")
    except OSError as e:
        raise CookbookError(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None


def decode_line(raw: bytes, where: str, what: str, first: bool = False) -> str:
    """One line of bytes as text (a leading BOM on the first line dropped)."""
    if first and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]  # editors on Windows write one; it is not data
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CookbookError(
            f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); save the {what} as UTF-8"
        ) from None


def iter_lines(f: IO[bytes], name: str, what: str) -> Iterator[tuple[int, str, str]]:
    """(line number, `name:line`, text) for each line of a binary stream, line ending dropped."""
    lineno = 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        where = f"{name}:{lineno}"
        if len(raw) > MAX_LINE_BYTES:
            raise CookbookError(
                f"{where}: line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB; split the {what} into smaller records"
            )
        yield lineno, where, decode_line(raw, where, what, first=lineno == 1).rstrip("\r\n")


def loads(text: str | bytes, where: str) -> Any:
    """A JSON value, refused in one line when malformed, nested too deeply or
    holding a lone surrogate."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno} column {e.colno}" if e.lineno > 1 else f"column {e.colno}"
        raise CookbookError(f"{where}: malformed JSON ({e.msg} at {at})") from None
    except RecursionError:
        raise CookbookError(f"{where}: JSON nested too deeply (thousands of [ or {{); flatten the record") from None
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _SURROGATE_ESCAPE.search(raw):
        _refuse_lone_surrogates(value, where)
    return value


def _refuse_lone_surrogates(value: Any, where: str) -> None:
    stack = [value]  # not recursive: the value may be nested up to the parser's limit
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            m = _SURROGATE.search(v)
            if m:
                raise CookbookError(
                    f"{where}: lone surrogate \\u{ord(m.group()):04x} in a string (half of a UTF-16 pair, not a "
                    "character); fix the text that wrote it"
                )
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def check_text(text: str, where: str) -> str:
    """`text` unchanged, or a one-line refusal if it holds a lone surrogate
    (command-line arguments with undecodable bytes arrive as such)."""
    m = _SURROGATE.search(text)
    if m:
        raise CookbookError(f"{where}: text that is not valid Unicode (\\u{ord(m.group()):04x}); give UTF-8 text")
    return text


def iter_jsonl(path: str | Path, what: str = "file") -> Iterator[tuple[int, str, Any]]:
    """(line number, `file:line`, decoded value) for each non-blank line of a JSONL file.

    `what` names the file in errors ("conversation file", "comparison file")."""
    p = Path(path).expanduser()
    with _open(p, what) as f:
        for lineno, where, line in iter_lines(f, str(p), what):
            if line.strip():
                yield lineno, where, loads(line, where)


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """A whole-file JSON document (settings, `adapter_config.json`)."""
    p = Path(path).expanduser()
    with _open(p, what) as f:
        raw = f.read(MAX_JSON_FILE_BYTES + 1)
    if len(raw) > MAX_JSON_FILE_BYTES:
        raise CookbookError(f"{what} {str(p)!r} is larger than {MAX_JSON_FILE_BYTES // (1024 * 1024)} MiB")
    return loads(decode_line(raw, str(p), what, first=True), str(p))


#: `--prompts sample`: the prompts shipped with cookbook (for `sample` and on-policy distillation).
SAMPLE_PROMPTS = "sample"


def prompts_path(value: str | Path) -> Path:
    """The prompt file a user named; the word `sample` (when no such file is
    here) is the one shipped with cookbook, `cookbook_cli/data/sample_prompts.jsonl`."""
    from importlib import resources

    p = Path(value).expanduser()
    if str(value) == SAMPLE_PROMPTS and not p.exists():
        return Path(str(resources.files("cookbook_cli.data").joinpath("sample_prompts.jsonl")))
    return p
