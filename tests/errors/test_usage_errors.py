"""Usage errors (an unknown command or option) are click's own message and
exit status 2 for users too, not "a bug in cookbook": the suite runs with
COOKBOOK_DEBUG=1, which re-raises what the boundary does not explain, so
these run without it, as a user's shell does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["renderers", "nosuch"], "No such command 'nosuch'"),
        (["renderers", "list", "--nosuch"], "No such option: --nosuch"),
    ],
)
def test_usage_errors_are_clicks_message_without_debug(args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COOKBOOK_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "cookbook_cli", *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "bug" not in proc.stderr and "Traceback" not in proc.stderr
