"""The preference-model (`train pm`), preference env and win_rate tests drive the
CLI in real processes with the helpers of the SL tests; one trained judge
serves them all."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sl"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def pm_run(tmp_path_factory):
    """(log dir, finished process) of the reference `train pm` run; its tests
    share one xdist worker (SHARED_SESSION_FIXTURES in the root conftest.py)."""
    from pm_helpers import pm_args
    from sl_helpers import run_cli

    log_dir = tmp_path_factory.mktemp("pm") / "reference"
    proc = run_cli(pm_args(log_dir), timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return log_dir, proc

