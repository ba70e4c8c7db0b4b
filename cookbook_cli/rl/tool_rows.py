"""Rows (question, answer) for tool envs: the sample shipped in the package, a
local JSONL/JSON/CSV/parquet file, or a Hugging Face dataset."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from cookbook_cli.errors import CookbookError


def shipped_rows(filename: str) -> list[dict[str, str]]:
    """The rows of `cookbook_cli/rl/data/<filename>` (JSONL with question and answer)."""
    text = resources.files("cookbook_cli.rl").joinpath("data", filename).read_text(encoding="utf-8")
    return [_row(json.loads(line), filename, n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def dataset_rows(
    path: str, config_name: str | None, split: str, question: str, answer: str,
    parse_answer: Callable[[str], str] = str, limit: int | None = None,
) -> list[dict[str, str]]:
    """Rows from a dataset (Hub id or local file): `question` and `answer` are its
    column names; `parse_answer` turns a stored answer into the reference."""
    from cookbook_cli.data.hf_loading import load_split, require_columns

    ds = load_split(path, config_name, split)
    require_columns(ds, (question, answer), path, split)
    rows = []
    for n, r in enumerate(ds):
        if limit is not None and n >= limit:
            break
        rows.append({"question": str(r[question]), "answer": parse_answer(str(r[answer]))})
    if not rows:
        raise CookbookError(f"dataset {path!r} split {split!r} has no rows")
    return rows


def _row(obj: Any, where: str, n: int) -> dict[str, str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or "answer" not in obj:
        raise CookbookError(f"{where}:{n}: a row needs a string 'question' and an 'answer'")
    return {"question": obj["question"], "answer": str(obj["answer"])}
