"""pass@k against the closed form, and the graders on tricky answers."""

from __future__ import annotations

from math import comb

import pytest

from cookbook_cli.evaluation.base import pass_at_k
from cookbook_cli.evaluation.graders import extract_letter, extract_number, first_integer_matches, numbers_match


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(5, 2, 1, 0.4), (5, 2, 2, 0.7), (4, 0, 2, 0.0), (4, 4, 1, 1.0), (10, 3, 5, 1 - 21 / 252), (8, 7, 2, 1.0), (1, 1, 1, 1.0)],
)
def test_pass_at_k_hand_made_counts(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_the_closed_form_everywhere():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_pass_at_k_refuses_impossible_counts():
    for n, c, k in [(3, 4, 1), (3, 1, 4), (3, 1, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("response", "reference", "ok"),
    [
        ("She pays $1,234.50 in total.", "#### 1234.5", True),  # dollar sign and thousands separator
        ("So the answer is 18.", "#### 18", True),  # trailing period
        ("The total is \\boxed{\\$18}", "#### 18", True),  # boxed, with an escaped dollar
        ("\\boxed{1{,}000}", "#### 1000", True),  # LaTeX thousands separator
        ("First 3, then 5: #### 8.", "#### 8", True),  # the #### answer wins over earlier numbers
        ("3 apples and 5 pears make 8", "#### 8", True),  # else the last number
        ("It is 1,000.00", "#### 1000", True),  # equal by value
        ("#### -5", "#### -5", True),
        ("7 is wrong, it is 9", "#### 7", False),
        ("no number at all", "#### 3", False),
        ("#### 72", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", True),
    ],
)
def test_numeric_grader(response, reference, ok):
    assert numbers_match(response, reference) is ok


def test_extract_number_values():
    assert extract_number("$1,234.50.") == pytest.approx(1234.5)
    assert extract_number("\\boxed{42}") == 42
    assert extract_number("none") is None


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("Answer: B", "B"),
        ("The answer is (C).", "C"),
        ("\\boxed{D}", "D"),
        ("B. Because the others are wrong.", "B"),
        ("(A) is right", "A"),
        ("C", "C"),
        ("I pick C", "C"),
        ("A good guess is C", None),  # two letters stand alone: no answer
        ("A and B", None),
        ("Answer: E", None),  # not an option
        ("answer: b", None),
    ],
)
def test_letter_extraction(response, letter):
    assert extract_letter(response, "ABCD") == letter


def test_arithmetic_grader_reads_the_first_integer():
    assert first_integer_matches(" 12", "12")
    assert first_integer_matches("12 is it, not 13", "12")
    assert not first_integer_matches("13 no 12", "12")
    assert not first_integer_matches("twelve", "12")
    assert first_integer_matches("-3", "-3")
