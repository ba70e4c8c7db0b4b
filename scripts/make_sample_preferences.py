"""Write the sample comparison file shipped inside the package.

    python scripts/make_sample_preferences.py [OUTPUT.jsonl]

Each line is a comparison in tinker-cookbook's shape ({"comparison":
{"prompt_conversation", "completion_A", "completion_B"}, "label"}); which side
is preferred is drawn at random, so both labels occur. The preferred completion
differs from the rejected one in a consistent, lexical way that a tiny randomly
initialised model picks up within a few DPO steps and that carries over to
held-out rows (new names, items and numbers in the same patterns):

- polite requests beat curt orders ("Please pass the salt, Ada. Thank you!");
- answering the question beats refusing it ("3 plus 4 is 7." vs "Ask someone else.");
- a concise answer beats hedging ("Blue." vs "Um, well, maybe blue, I guess?");
- greeting the user by name beats brushing them off;
- a numbered list beats a run-on sentence.

The preferred completion always answers the prompt in its own words (the
name, item, numbers or words it asked about). Some prompts have a system
message or an earlier exchange. Generation is seeded: the same script writes the
same file, byte for byte.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "cookbook_cli" / "data" / "sample_preferences.jsonl"

NAMES = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lena", "Milo", "Nora"]
ITEMS = ["salt", "bread", "water", "map", "pen", "book", "key", "cup", "lamp", "coat"]
WORDS = ["apple", "river", "stone", "cloud", "piano", "tiger", "candle", "orbit", "maple", "lemon"]
COLORS = ["red", "blue", "green", "yellow", "white", "black"]
REFUSALS = ["I will not tell you.", "Ask someone else.", "No idea, sorry."]
SYSTEMS = ["You are a helpful assistant.", "Be friendly and brief."]

Pattern = Callable[[random.Random], tuple[str, str, str]]  # (prompt, preferred, rejected)


def _polite(rng: random.Random) -> tuple[str, str, str]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    return f"Ask {name} for the {item}.", f"Please pass the {item}, {name}. Thank you!", f"Give me the {item}, {name}."


def _answer(rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.", rng.choice(REFUSALS)


def _concise(rng: random.Random) -> tuple[str, str, str]:
    color = rng.choice(COLORS)
    return f"Name a color like {color}.", f"{color.capitalize()}.", f"Um, well, maybe {color}, I guess?"


def _greet(rng: random.Random) -> tuple[str, str, str]:
    name = rng.choice(NAMES)
    return f"Hi, I am {name}.", f"Hello, {name}! Nice to meet you.", "What do you want?"


def _listing(rng: random.Random) -> tuple[str, str, str]:
    a, b, c = rng.sample(WORDS, 3)
    return f"List {a}, {b} and {c}.", f"1. {a} 2. {b} 3. {c}", f"{a} and {b} and {c}, I think."


PATTERNS: list[Pattern] = [_polite, _answer, _concise, _greet, _listing]


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def make_comparisons(n: int = 300, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt: list[dict] = []
        if rng.random() < 0.15:
            prompt.append({"role": "system", "content": rng.choice(SYSTEMS)})
        if rng.random() < 0.1:  # an earlier exchange, answered well
            earlier, reply, _ = rng.choice(PATTERNS)(rng)
            prompt += [_user(earlier), _assistant(reply)]
        question, preferred, rejected = rng.choice(PATTERNS)(rng)
        prompt.append(_user(question))
        label = rng.choice("AB")
        a, b = (preferred, rejected) if label == "A" else (rejected, preferred)
        comparison = {"prompt_conversation": prompt, "completion_A": [_assistant(a)], "completion_B": [_assistant(b)]}
        out.append({"comparison": comparison, "label": label})
    return out


def main(argv: list[str]) -> None:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    with path.open("w", encoding="utf-8") as f:
        for row in make_comparisons():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv)
