"""A local Tinker-compatible server for the tinker engine's integration tests.

`tinker_local` starts `scripts/tinker_local_server.sh` (SkyRL's Tinker API on
the CPU with a tiny Llama model; set-up is cached, the first one takes several
minutes) on a free port with a fresh state folder, waits until it answers, and
stops its whole process group at the end of the session. Only when
COOKBOOK_TINKER_LOCAL=1; otherwise the tests using it are skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "tinker_local_server.sh"
ENABLE = (
    "local Tinker server tests are off: run them with COOKBOOK_TINKER_LOCAL=1 "
    "(needs Python 3.12 and PyPI once, to set up SkyRL; see docs/engines.md)"
)
# The first start installs SkyRL (~7 GB) and makes the model; later ones take seconds.
START_TIMEOUT_S = float(os.environ.get("COOKBOOK_TINKER_LOCAL_START_TIMEOUT", "1500"))


@dataclass(frozen=True)
class LocalTinker:
    base_url: str
    api_key: str
    model: str
    log: Path

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _announced(log: Path) -> dict[str, str]:
    """The script's base_url=/api_key=/model= lines, once it has printed them."""
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("base_url", "api_key", "model"):
            found[key] = value.strip()
    return found


def _answers(base_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base_url}/api/v1/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (uv, SkyRL's API, its engine), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            time.sleep(1)  # let the group's other members go too
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def tinker_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTinker]:
    if os.environ.get("COOKBOOK_TINKER_LOCAL") != "1":
        pytest.skip(ENABLE)
    state = tmp_path_factory.mktemp("tinker-local")
    log = state / "server.log"
    port = _free_port()
    env = {**os.environ, "COOKBOOK_TINKER_LOCAL_STATE": str(state / "server")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the local Tinker server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
            seen = _announced(log)
            if len(seen) == 3 and _answers(seen["base_url"]):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the local Tinker server did not answer in {START_TIMEOUT_S:g} s:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(1)
        yield LocalTinker(seen["base_url"], seen["api_key"], seen["model"], log)
    finally:
        _stop(proc)
