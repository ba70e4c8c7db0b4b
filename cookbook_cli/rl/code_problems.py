"""Programming problems for the `code` env: the shipped MBPP-style sample,
and rows of MBPP- or HumanEval-shaped datasets (Hub ids or local files),
turned into one `CodeProblem` shape."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError

SAMPLE = "sample"
# Hub datasets by short name: (dataset id, configuration, split).
HUB_ALIASES = {
    "mbpp": ("google-research-datasets/mbpp", "full", "test"),
    "humaneval": ("openai/openai_humaneval", None, "test"),
}
FORMATS = ("auto", "sample", "mbpp", "humaneval")
# The columns that identify each format (auto-detection) and that it needs.
_COLUMNS = {
    "sample": ("prompt", "entry_point", "tests"),
    "mbpp": ("text", "code", "test_list"),
    "humaneval": ("prompt", "canonical_solution", "test", "entry_point"),
}


@dataclass(frozen=True)
class CodeProblem:
    task_id: str
    prompt: str  # what the user message asks for
    entry_point: str  # the function the tests call
    tests: tuple[str, ...]  # statements run against the solution (asserts)
    setup: str = ""  # code run before the solution (imports the tests rely on)
    solution: str = ""  # a reference solution, shown in transcripts


def sample_path() -> Path:
    return Path(__file__).with_name("data") / "code_sample.jsonl"


def load_problems(dataset: str, fmt: str = "auto", split: str | None = None) -> list[CodeProblem]:
    """Problems of `dataset`: `sample` (shipped), `mbpp`, `humaneval`, a Hub id or a local file."""
    if fmt not in FORMATS:
        raise CookbookError(f"unknown code problem format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if dataset == SAMPLE:
        with sample_path().open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        fmt = "sample"
    else:
        from cookbook_cli.data.hf_loading import load_split

        path, config, default_split = HUB_ALIASES.get(dataset, (dataset, None, "train"))
        if fmt == "auto" and dataset in HUB_ALIASES:
            fmt = dataset
        rows = [dict(r) for r in load_split(path, config, split or default_split, label=dataset)]
    if not rows:
        raise CookbookError(f"code dataset {dataset!r} holds no rows")
    if fmt == "auto":
        fmt = next((f for f, cols in _COLUMNS.items() if all(c in rows[0] for c in cols)), "")
        if not fmt:
            raise CookbookError(
                f"code dataset {dataset!r} has none of the known shapes (columns: {', '.join(sorted(rows[0]))}); "
                "give rows with prompt/entry_point/tests, MBPP's text/code/test_list or HumanEval's "
                "prompt/canonical_solution/test/entry_point"
            )
    missing = [c for c in _COLUMNS[fmt] if c not in rows[0]]
    if missing:
        raise CookbookError(f"code dataset {dataset!r} ({fmt} format) has no column {', '.join(missing)}")
    convert = {"sample": _from_sample, "mbpp": _from_mbpp, "humaneval": _from_humaneval}[fmt]
    return [convert(row, i) for i, row in enumerate(rows)]


def _from_sample(row: dict[str, Any], index: int) -> CodeProblem:
    return CodeProblem(
        task_id=str(row.get("task_id", index)),
        prompt=str(row["prompt"]),
        entry_point=str(row["entry_point"]),
        tests=tuple(str(t) for t in row["tests"]),
        setup=str(row.get("setup") or ""),
        solution=str(row.get("solution") or ""),
    )


def _defined_functions(code: str) -> list[str]:
    try:
        return [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return []


def _from_mbpp(row: dict[str, Any], index: int) -> CodeProblem:
    tests = [str(t) for t in row["test_list"]]
    # MBPP's text does not name the function: the one of the reference solution the tests call.
    names = [n for n in _defined_functions(str(row["code"])) if any(f"{n}(" in t for t in tests)]
    entry = names[0] if names else ""
    example = f"\nYour function must pass tests like this one:\n{tests[0]}" if tests else ""
    return CodeProblem(
        task_id=str(row.get("task_id", index)),
        prompt=f"{row['text']}{example}",
        entry_point=entry,
        tests=tuple(tests),
        setup=str(row.get("test_setup_code") or ""),
        solution=str(row["code"]),
    )


def _from_humaneval(row: dict[str, Any], index: int) -> CodeProblem:
    prompt = str(row["prompt"])
    entry = str(row["entry_point"])
    # The stub's imports (typing, math) are the solution's too, whether or not the answer repeats them.
    setup = "\n".join(line for line in prompt.splitlines() if line.startswith(("import ", "from ")))
    return CodeProblem(
        task_id=str(row.get("task_id", index)),
        prompt=f"Complete this Python function:\n```python\n{prompt.rstrip()}\n```",
        entry_point=entry,
        tests=(f"{row['test']}\ncheck({entry})",),
        setup=setup,
        solution=prompt + str(row["canonical_solution"]),
    )
