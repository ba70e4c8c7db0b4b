"""Model-written code attacking the bwrap sandbox, one attack a test, through
`run_code`: each is contained, the right limit is named, the host is unharmed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cookbook_cli.sandbox import SandboxLimits, run_code

from .conftest import assert_host_clean, descendants

FAST = SandboxLimits(wall_time_s=3, cpu_time_s=2)


@pytest.fixture
def attack(bwrap_backend, sandbox_tmp):
    """Run code on the bwrap path and check the host afterwards."""

    def run(code: str, limits: SandboxLimits = FAST):
        before = descendants()
        result = run_code(code, limits=limits, backend=bwrap_backend)
        assert result.backend == "bwrap"
        assert_host_clean(sandbox_tmp, before)
        return result

    return run


def test_an_infinite_loop_is_killed_at_the_time_limit(attack):
    result = attack("while True:\n    pass")
    assert result.limit == "timeout" and result.exit_code in (128 + 9, 128 + 24)  # wall-time SIGKILL or RLIMIT_CPU SIGXCPU


def test_a_sleeping_process_tree_is_killed_whole(attack):
    # children in the background, the parent waiting: the whole PID namespace goes
    code = "import subprocess, time\nfor _ in range(3):\n    subprocess.Popen(['sleep', '1000'])\ntime.sleep(1000)"
    result = attack(code)
    assert result.limit == "timeout"


def test_a_fork_bomb_meets_the_process_limit(attack):
    result = attack("import os\nwhile True:\n    os.fork()", SandboxLimits(wall_time_s=20, cpu_time_s=20, max_processes=16))
    assert result.limit == "processes" and result.exit_code != 0
    assert "Resource temporarily unavailable" in result.stderr


def test_a_10_gb_allocation_meets_the_memory_limit(attack):
    result = attack("x = bytearray(10 * 2**30)\nprint('allocated')")
    assert result.limit == "memory" and "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_writing_outside_its_folder_fails(attack, tmp_path: Path):
    target = tmp_path / "outside.txt"
    code = (
        "import os\n"
        f"for path in [{str(target)!r}, '/usr/pwned', '/etc/pwned', os.path.expanduser('~/../pwned')]:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, e.errno)\n"
        "open('inside.txt', 'w').write('fine')\n"
        "print(open('inside.txt').read())"
    )
    result = attack(code)
    assert result.ok, result.stderr
    assert "wrote" not in result.stdout and result.stdout.count("refused") == 4 and "fine" in result.stdout
    assert not target.exists() and not Path("/usr/pwned").exists() and not Path("/etc/pwned").exists()


def test_the_users_home_is_not_readable(attack, tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.txt").write_text("the-secret")
    monkeypatch.setenv("HOME", str(home))
    code = (
        "import os\n"
        f"print(os.environ['HOME'], os.path.exists({str(home)!r}))\n"
        f"print(open({str(home / 'secret.txt')!r}).read())"
    )
    result = attack(code)
    assert result.exit_code == 1 and "FileNotFoundError" in result.stderr
    assert result.stdout.split() == ["/sandbox", "False"] and "the-secret" not in result.stdout + result.stderr


def test_a_socket_reaches_nothing(attack):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)\nprint('connected')"
        result = attack(code)
        assert result.exit_code == 1 and "connected" not in result.stdout
        assert "ConnectionRefusedError" in result.stderr or "Network is unreachable" in result.stderr
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # the run is over: a connection would be queued by now
        outside = attack("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)")
        assert "Network is unreachable" in outside.stderr


def test_printing_1_gb_is_cut_at_the_output_limit(attack):
    code = "import sys\nchunk = b'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.buffer.write(chunk)"
    result = attack(code, SandboxLimits(wall_time_s=60, cpu_time_s=60, output_bytes=4096))
    assert result.limit == "output" and result.stdout == "x" * 4096 and result.exit_code == 128 + 9


def test_a_file_over_the_size_limit_is_refused(attack):
    result = attack("open('big', 'wb').write(b'x' * 2**20)", SandboxLimits(wall_time_s=5, file_bytes=2**16))
    assert result.limit == "output" and "File too large" in result.stderr
