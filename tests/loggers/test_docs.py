"""docs/tracking.md cannot drift from the code: its plugin example is run, and
what it prints must match the comments beside the prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


def test_plugin_example_runs_and_prints_what_it_says(tmp_path):
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    expected = [c.strip() for c in re.findall(r"^\s*print\(.*\)\s+# (.*)$", code, flags=re.M)]
    assert len(expected) == 2
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == expected
    rows = (tmp_path / "runs" / "demo" / "my-tracker" / "steps.jsonl").read_text().splitlines()
    assert rows[0] == '{"step": 0, "train/loss": 1.0}' and len(rows) == 3
    assert (tmp_path / "runs" / "demo" / "my-tracker" / "status").read_text() == "finished"
