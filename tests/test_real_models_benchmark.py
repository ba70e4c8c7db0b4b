"""benchmarks/real_models.py (too slow for the suite) keeps a valid command line and a correct SFT task."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "real_models.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("real_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (13, "thirteen"), (40, "forty"), (58, "fifty-eight"), (100, "one hundred"), (347, "three hundred forty-seven"), (910, "nine hundred ten")],
)
def test_numbers_in_words(bench, n, words):
    assert bench.number_words(n) == words


def test_replies_are_compared_without_case_or_a_final_period(bench):
    assert bench.normalized(" Three hundred forty-seven.\n") == "three hundred forty-seven"


def test_an_unknown_method_is_refused_before_anything_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "sft,ppo", "--work", str(tmp_path / "w")], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown method(s) ppo" in proc.stderr
    assert not (tmp_path / "w").exists()
