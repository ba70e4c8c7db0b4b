"""Running one `cookbook` command from a benchmark script: in a subprocess of
the same interpreter, logged with its wall time, a failure ending the script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def cookbook(log: Path, *words: str) -> float:
    """Run `cookbook WORDS`, append the command and its output to `log`; its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cookbook_cli", *words], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - start
    with log.open("a") as f:
        f.write(f"$ cookbook {' '.join(words)}  # {wall:.0f}s, exit {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        sys.exit(f"cookbook {' '.join(words)} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return wall
