"""Grading model-written Python against hidden unit tests, in the sandbox.

`extract_code` takes the code out of a response (its last fenced block, or
the whole text when it has none); `grade` runs the tests and returns the
fraction passed, with the sandbox limit that stopped it, if any."""

from __future__ import annotations

import ast
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cookbook_cli.sandbox import SandboxLimits, run_code

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def code_blocks(response: str) -> list[str]:
    """The fenced code blocks of a response, in order."""
    return [m.group(1) for m in _FENCE.finditer(response)]


def extract_code(response: str) -> str:
    """The code a response answers with: its last fenced block, else its whole text."""
    blocks = code_blocks(response)
    return blocks[-1] if blocks else response


def defines_function(code: str, name: str) -> bool:
    """Whether `code` parses and defines a top-level function `name`."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name for node in tree.body)


@dataclass(frozen=True)
class Grade:
    passed: int
    total: int
    limit: str | None  # the sandbox limit the run hit (`timeout`, `memory`, ...), if any
    stderr: str

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


def grade(code: str, tests: list[str], setup: str = "", limits: SandboxLimits = SandboxLimits()) -> Grade:  # noqa: B008
    """Run `tests` (Python statements, usually asserts) against `code` in one sandboxed process."""
    nonce = secrets.token_hex(16)
    spec = json.dumps({"nonce": nonce, "tests": tests, "setup": setup})
    harness = Path(__file__).with_name("code_harness.py").read_text(encoding="utf-8")
    result = run_code(harness, stdin=spec, files={"solution.py": code}, limits=limits)
    passed: set[int] = set()
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == nonce and words[2] == "1" and words[1].isdigit():
            passed.add(int(words[1]))
    return Grade(passed=len(passed & set(range(len(tests)))), total=len(tests), limit=result.limit, stderr=result.stderr)
