"""Seeded conversation files for the tinker-cookbook parity tests.

`conversations(seed, n, system=...)` makes `n` rows of one to four user/assistant
turns, with a system message on some rows (or on all of them with
`system="always"`), mixing short and long replies, digits, punctuation and
accented text. Messages hold only `role` and `content` strings: tinker-cookbook
loads a file through `datasets.Dataset.from_list`, whose Arrow schema would add
missing keys (`None`) to messages of files that mix shapes.

`python tests/data/parity_conversations.py` rewrites the two committed files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The committed files: name -> (seed, rows, system).
COMMITTED = {
    "parity_multiturn.jsonl": (16, 23, "sometimes"),
    "parity_system.jsonl": (61, 17, "always"),
}

_WORDS = "river maple orbit candle lemon quartz café naïve harbour violet pebble thunder ember lantern".split()
_SYSTEMS = [
    "You are a concise assistant.",
    "Answer in one sentence.",
    "You are a patient tutor. Explain each step.",
    "Réponds brièvement, s'il te plaît.",
]


def _turn(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(5)
    if kind == 0:
        a, b = rng.randrange(100), rng.randrange(100)
        return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
    if kind == 1:
        w = rng.choice(_WORDS)
        return f"Spell {w}.", "-".join(w.upper())
    if kind == 2:
        ws = rng.sample(_WORDS, rng.randint(2, 5))
        return f"Sort these words: {', '.join(ws)}", ", ".join(sorted(ws))
    if kind == 3:
        w = rng.choice(_WORDS)
        lines = [f"{i + 1}. {w} {rng.choice(_WORDS)}" for i in range(rng.randint(2, 6))]
        return f"List a few phrases with {w!r}.", "Here you go:\n" + "\n".join(lines)
    n = rng.randint(3, 12)
    return "Count to {}.".format(n), " ".join(str(i) for i in range(1, n + 1))


def conversations(seed: int, n: int, system: str = "sometimes") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        messages: list[dict[str, str]] = []
        if system == "always" or (system == "sometimes" and rng.random() < 0.4):
            messages.append({"role": "system", "content": rng.choice(_SYSTEMS)})
        for _ in range(rng.randint(1, 4)):
            user, assistant = _turn(rng)
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        rows.append({"messages": messages})
    return rows


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def committed_rows(name: str) -> list[dict[str, Any]]:
    seed, n, system = COMMITTED[name]
    return conversations(seed, n, system)


if __name__ == "__main__":
    for name in COMMITTED:
        print(write(HERE / name, committed_rows(name)))
