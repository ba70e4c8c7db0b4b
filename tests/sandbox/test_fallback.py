"""The fallback path (no bwrap): what it does guarantee, and the warning that
says what it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.sandbox import SandboxLimits, SandboxWarning, run_code, sandbox_backend
from cookbook_cli.sandbox import fallback as fallback_module

from .conftest import wait_exit

FAST = SandboxLimits(wall_time_s=3, cpu_time_s=2)
# The warning is tested once, below; the other tests choose the fallback on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::cookbook_cli.sandbox.SandboxWarning")


@pytest.fixture
def run(fallback_python, sandbox_tmp):
    def run(code: str, limits: SandboxLimits = FAST, **kw):
        result = run_code(code, limits=limits, backend="fallback", python=fallback_python, **kw)
        assert result.backend == "fallback"
        assert list(sandbox_tmp.iterdir()) == []  # its folder is gone
        return result

    return run


def test_the_fallback_warns_what_is_not_isolated(monkeypatch):
    monkeypatch.setattr(fallback_module, "_warned", False)
    with pytest.warns(SandboxWarning) as caught:
        assert sandbox_backend("fallback") == "fallback"
        sandbox_backend("fallback")  # once per process
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "network" in message and "read every file" in message and "apt-get install bubblewrap" in message


def test_the_process_group_is_killed_on_timeout(run):
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '1000'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(1000)"
    )
    result = run(code)
    assert result.limit == "timeout"
    wait_exit(int(result.stdout.split()[0]))


def test_children_left_behind_by_the_main_process_are_killed(run):
    result = run("import subprocess\nprint(subprocess.Popen(['sleep', '1000']).pid)", SandboxLimits(wall_time_s=30))
    assert result.ok and result.wall_time_s < 30  # the left child's open pipes did not hold the run
    wait_exit(int(result.stdout.split()[0]))


def test_limits_hold_on_the_fallback(run):
    assert run("while True:\n    pass").limit == "timeout"
    assert run("x = bytearray(10 * 2**30)").limit == "memory"
    assert run("print('x' * 10**6)", SandboxLimits(output_bytes=100)).stdout == "x" * 100
    bomb = run("import os\nwhile True:\n    os.fork()", SandboxLimits(wall_time_s=20, max_processes=16))
    assert bomb.limit == "processes"


def test_stdin_files_and_working_folder(run):
    result = run(
        "import os\nprint(input(), open('data/in.txt').read(), os.environ['HOME'] == os.getcwd())",
        stdin="hello\n", files={"data/in.txt": "file"},
    )
    assert result.ok and result.stdout.split() == ["hello", "file", "True"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback drops root's rights only when run by root")
def test_under_root_the_code_runs_as_a_user_without_root_rights(run, tmp_path: Path):
    target = tmp_path / "root-only" / "x.txt"
    target.parent.mkdir(mode=0o755)
    result = run(f"import os\nprint(os.getuid())\nopen({str(target)!r}, 'w')")
    assert int(result.stdout.split()[0]) != 0 and "PermissionError" in result.stderr and not target.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"files": {"../x": "y"}}, "sandbox file name '../x' must be a relative path inside the run's folder"),
        ({"files": {"main.py": "y"}}, "sandbox file name 'main.py' must be a relative path"),
        ({"backend": "docker"}, "unknown sandbox backend 'docker'; choose one of auto, bwrap, fallback"),
        ({"python": "no-such-python"}, "sandbox interpreter 'no-such-python' not found"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, message, sandbox_tmp):
    with pytest.raises(CookbookError) as e:
        run_code("pass", **{"backend": "fallback", **kwargs})
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert list(sandbox_tmp.iterdir()) == []


def test_a_limit_must_be_positive():
    with pytest.raises(CookbookError, match="sandbox limit wall_time_s must be positive, got 0"):
        SandboxLimits(wall_time_s=0)
