"""The files of a run directory, written so that a `kill -9` at any moment
leaves something a resumed run can use: whole-file writes go through a temp
file and `os.replace`; appends are whole lines, flushed and fsynced; a torn
last line (the only damage a killed append can do) is dropped on reading."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
MANIFEST = "cookbook-run.json"
LOCK = ".lock"


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise CookbookError(f"{path} is not UTF-8 text (byte {e.start}); restore it or start over with --if-exists overwrite") from None
    except ValueError as e:
        raise CookbookError(f"{path} is not valid JSON ({e}); restore it or start over with --if-exists overwrite") from None
    except OSError as e:
        raise CookbookError(f"cannot read {path}: {e.strerror or e}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's JSONL file; a torn last line is dropped. Any other
    line that is not a JSON object is an error naming the file and line: a
    silently skipped row would restart a run from the wrong place."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CookbookError(f"cannot read {path}: {e.strerror or e}") from None
    lines = data.split(b"\n")
    torn = lines.pop()  # after the last newline: b"" unless a write was cut short
    del torn
    rows = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise CookbookError(f"{where} is not UTF-8 text; remove that line, or start over with --if-exists overwrite") from None
        except ValueError:
            raise CookbookError(f"{where} is not valid JSON; remove that line, or start over with --if-exists overwrite") from None
        if not isinstance(row, dict):
            raise CookbookError(
                f"{where} holds a JSON {type(row).__name__}, not an object; remove that line, or start over with --if-exists overwrite"
            )
        rows.append(row)
    return rows


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
