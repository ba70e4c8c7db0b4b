"""Answer extraction and grading for graded benchmarks.

Numbers (GSM8K): the answer after the last `####`, else the last `\\boxed{}`,
else the last number in the response; `$`, thousands separators, a trailing
period and surrounding text are ignored, and numbers compare by value
(`1,000.00` equals `1000`). Letters (multiple choice): `Answer: B`, `the
answer is (B)`, `\\boxed{B}`, a response that starts with the letter (`B.`,
`(B)`, `B) ...`, or just `B`), or the one option letter that stands alone in
the text (`A good guess is C` names two, so it has no answer).
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_INT = re.compile(r"-?\d+")


def parse_number(text: str) -> Fraction | None:
    """The value of one number as written (`$1,234.50`, `-3`, `12.`), or None."""
    cleaned = text.strip().replace("$", "").replace("\\$", "").replace(" ", "").rstrip(".")
    cleaned = cleaned.replace("\\!", "").replace("{,}", "")
    m = _NUMBER.fullmatch(cleaned)
    if m is None:
        return None
    digits = m.group().replace(",", "")
    try:
        return Fraction(digits)
    except (ValueError, ZeroDivisionError):
        return None


def _last_number(text: str) -> Fraction | None:
    for m in reversed(list(_NUMBER.finditer(text.replace("\\$", "$")))):
        value = parse_number(m.group().rstrip(","))
        if value is not None:
            return value
    return None


def extract_number(response: str) -> Fraction | None:
    """The final numeric answer of a response (see the module docstring)."""
    if "####" in response:
        m = _NUMBER.search(response.rsplit("####", 1)[1])
        if m is not None:
            return parse_number(m.group().rstrip(","))
    boxed = _BOXED.findall(response)
    if boxed:
        value = parse_number(boxed[-1]) or _last_number(boxed[-1])
        if value is not None:
            return value
    return _last_number(response)


def numbers_match(response: str, reference: str) -> bool:
    """Whether the response's final number equals the reference answer's."""
    expected = extract_number(reference)
    got = extract_number(response)
    return expected is not None and got is not None and got == expected


def first_integer_matches(response: str, reference: str) -> bool:
    """The arithmetic grader (as the `arithmetic` env checks): the first integer of the response."""
    try:
        expected = int(reference.strip())
    except ValueError:
        return False
    m = _INT.search(response)
    return m is not None and int(m.group()) == expected


def option_letters(n: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n]


def extract_letter(response: str, letters: str) -> str | None:
    """The option letter a response answers with, or None (see the module docstring)."""
    cls = f"[{letters}]"
    patterns = [
        rf"(?i:answer)\s*(?:(?i:is)\s*)?[:\-]?\s*(?:option\s*)?\(?({cls})\)?(?![A-Za-z])",
        rf"\\boxed\s*\{{\s*(?:\\text\{{)?({cls})\}}?\s*\}}",
        rf"^\s*\(?({cls})\)?(?:[.):,]|\s*$)",
        rf"\(({cls})\)",
    ]
    for p in patterns:
        found = re.findall(p, response)
        if found:
            return found[-1] if p.startswith("(?i:answer)") else found[0]
    alone = set(re.findall(rf"(?<![A-Za-z]){cls}(?![A-Za-z'])", response))
    return alone.pop() if len(alone) == 1 else None
