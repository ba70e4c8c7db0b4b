"""`run_code`: one program in the sandbox, supervised until it ends or hits a limit."""

from __future__ import annotations

import itertools
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cookbook_cli.errors import CookbookError
from cookbook_cli.sandbox import bwrap, fallback
from cookbook_cli.sandbox.interpreter import interpreter
from cookbook_cli.sandbox.limits import MEMORY, OUTPUT, PROCESSES, TIMEOUT, SandboxLimits, SandboxResult

BACKENDS = ("auto", "bwrap", "fallback")
MAIN = "main.py"
_READ = 65536
_DRAIN_S = 1.0  # after a kill, how long to read what the pipes still hold
_uids = itertools.count()


def sandbox_backend(backend: str = "auto") -> str:
    """The path `run_code(backend=...)` takes here: `bwrap`, or `fallback` (which warns once)."""
    if backend not in BACKENDS:
        raise CookbookError(f"unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "fallback":
        fallback.warn_once("the fallback was asked for")
        return backend
    problem = bwrap.bwrap_problem()
    if problem is None:
        return "bwrap"
    if backend == "bwrap":
        raise CookbookError(f"{problem}; install it with `apt-get install bubblewrap` (scripts/test.sh does)")
    fallback.warn_once(problem)
    return "fallback"


def _run_uid() -> int:
    """A user id of this run's own (root's runs only): no other process shares
    its process count, and it cannot signal another run's processes."""
    return 100_000_000 + (os.getpid() % 4_194_304) * 256 + next(_uids) % 256


def _rlimits(limits: SandboxLimits) -> dict[str, tuple[int, int]]:
    cpu = max(1, math.ceil(limits.cpu_time_s))
    return {
        "RLIMIT_CPU": (cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL a second later
        "RLIMIT_AS": (limits.memory_bytes, limits.memory_bytes),
        "RLIMIT_NPROC": (limits.max_processes, limits.max_processes),
        "RLIMIT_FSIZE": (limits.file_bytes, limits.file_bytes),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_NOFILE": (256, 256),
    }


def _check_file_names(files: Mapping[str, str | bytes] | None) -> None:
    for name in files or {}:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] == MAIN:
            raise CookbookError(f"sandbox file name {name!r} must be a relative path inside the run's folder, not {MAIN}")


def _write_files(workdir: Path, code: str, files: Mapping[str, str | bytes] | None, stdin: str | bytes | None) -> Path:
    for name, content in (files or {}).items():
        target = workdir.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    (workdir / MAIN).write_text(code, encoding="utf-8")
    stdin_path = workdir.parent / "stdin"
    stdin_path.write_bytes(stdin.encode() if isinstance(stdin, str) else (stdin or b""))
    return stdin_path


def _chown_tree(path: Path, uid: int) -> None:
    for root, dirs, names in os.walk(path):
        for n in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in names)]:
            os.chown(n, uid, uid)


@dataclass
class _Run:
    """The live state of one supervised run."""

    proc: subprocess.Popen[bytes]
    backend: str
    output_bytes: int
    out: dict[int, bytearray] = field(default_factory=dict)
    limit: str | None = None
    status_text: bytearray = field(default_factory=bytearray)  # the launcher's reports
    bwrap_status: bytearray = field(default_factory=bytearray)  # bwrap's --json-status-fd
    killed: bool = False

    def hit(self, limit: str) -> None:
        self.limit = self.limit or limit

    def child_pid(self) -> int | None:
        """The PID namespace's first process (bwrap's --json-status-fd), once
        reported and while it is still bwrap's child."""
        first = bytes(self.bwrap_status).split(b"\n", 1)[0]
        try:
            pid = int(json.loads(first)["child-pid"])
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (ValueError, KeyError, TypeError, OSError):
            return None
        return pid if ppid == self.proc.pid else None

    def kill(self) -> None:
        """Kill every process of the run and wait until they are gone."""
        if self.killed:
            return
        self.killed = True
        if self.backend == "fallback":
            _signal_group(self.proc.pid)
            self.proc.wait()
            return
        pid = self.child_pid()
        if pid is not None:
            # Killing the namespace's first process kills the namespace; bwrap exits
            # once the kernel has reaped every process in it.
            _signal(pid)
            self.proc.wait()
            return
        self.proc.kill()  # before the namespace was reported: --die-with-parent ends it
        self.proc.wait()


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _signal_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _supervise(run: _Run, status_fd: int, bwrap_fd: int, deadline: float) -> None:
    """Read the run's pipes until they close; kill it on a limit or when time is up."""
    sel = selectors.DefaultSelector()
    for fd in [*run.out, status_fd, *([bwrap_fd] if bwrap_fd >= 0 else [])]:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    # The main process's exit, as an event: in the fallback its children may hold the pipes open.
    exit_fd = os.pidfd_open(run.proc.pid) if hasattr(os, "pidfd_open") else -1
    if exit_fd >= 0:
        sel.register(exit_fd, selectors.EVENT_READ)
    try:
        # Until the pipes close and the main process has exited: its pipes close
        # a moment before it can be reaped, and killing it in that moment would
        # hide the limit it died of (RLIMIT_CPU's SIGXCPU).
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                if run.killed:
                    break  # pipes held open by a process out of reach (fallback: its own session)
                run.hit(TIMEOUT)
                run.kill()
                deadline = time.monotonic() + _DRAIN_S
                continue
            for key, _ in sel.select(left):
                fd = int(key.fd)
                if fd == exit_fd:
                    sel.unregister(fd)
                    if run.backend == "fallback":
                        _signal_group(run.proc.pid)  # what the main process left behind
                    continue
                chunk = os.read(fd, _READ)
                if not chunk:
                    sel.unregister(fd)
                elif fd == bwrap_fd:
                    run.bwrap_status += chunk
                elif fd == status_fd:
                    run.status_text += chunk
                    for word in bytes(run.status_text).decode(errors="replace").split():
                        if word in (MEMORY, PROCESSES, OUTPUT):
                            run.hit(word)
                else:
                    buf = run.out[fd]
                    buf += chunk[: run.output_bytes + 1 - len(buf)]
                    if len(buf) > run.output_bytes and not run.killed:
                        run.hit(OUTPUT)
                        run.kill()
                        deadline = min(deadline, time.monotonic() + _DRAIN_S)
    finally:
        sel.close()
        if exit_fd >= 0:
            os.close(exit_fd)
    if run.proc.poll() is None:
        run.kill()
    run.proc.wait()


def run_code(
    code: str,
    *,
    stdin: str | bytes | None = None,
    files: Mapping[str, str | bytes] | None = None,
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, shared safely
    backend: str = "auto",
    python: str | None = None,
) -> SandboxResult:
    """Run Python `code` (as `main.py`, the standard library only) in a
    sandbox: no network, its own temporary folder (with `files` in it,
    removed afterwards), `stdin` as its input, and `limits`. `python` is the
    interpreter (default: the one running cookbook). See docs/tools.md for
    what each backend isolates."""
    _check_file_names(files)
    path = sandbox_backend(backend)
    as_root = os.geteuid() == 0
    if path == "fallback" and as_root:
        fallback.check_unprivileged_interpreter(python)
    top = Path(tempfile.mkdtemp(prefix="cookbook-sandbox-"))
    try:
        workdir = top / "work"
        workdir.mkdir()
        stdin_path = _write_files(workdir, code, files, stdin)
        uid = _run_uid() if as_root else None
        if uid is not None:
            _chown_tree(workdir, uid)
        return _start_and_supervise(path, workdir, stdin_path, uid, limits, python)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _start_and_supervise(
    path: str, workdir: Path, stdin_path: Path, uid: int | None, limits: SandboxLimits, python: str | None
) -> SandboxResult:
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    bwrap_r, bwrap_w = os.pipe() if path == "bwrap" else (-1, -1)
    cfg = {
        "status_fd": status_w,  # the launcher's status pipe (bwrap passes it through under its number)
        "uid": uid if path == "bwrap" else None,  # the fallback drops to `uid` before Python starts
        "rlimits": _rlimits(limits),
        "main": MAIN,
    }
    program = [interpreter(python), "-I", "-S", "-c", _launcher_source(), json.dumps(cfg)]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    started = time.monotonic()
    try:
        try:
            with open(stdin_path, "rb") as stdin_file:
                if path == "bwrap":
                    cmd = bwrap.bwrap_command(str(workdir), bwrap_w, limits.file_bytes, uid is not None, python) + program
                    env["HOME"] = bwrap.WORKDIR
                    extra: dict[str, object] = {}
                else:
                    cmd = program
                    env["HOME"] = env["TMPDIR"] = str(workdir)
                    extra = {"cwd": str(workdir)}
                    if uid is not None:
                        extra.update(user=uid, group=uid, extra_groups=[])
                proc = subprocess.Popen(
                    cmd,
                    stdin=stdin_file,
                    stdout=out_w,
                    stderr=err_w,
                    env=env,
                    start_new_session=True,
                    pass_fds=tuple(fd for fd in (status_w, bwrap_w) if fd >= 0),
                    **extra,  # type: ignore[arg-type]
                )
        finally:
            for fd in (status_w, out_w, err_w, bwrap_w):
                if fd >= 0:
                    os.close(fd)
        run = _Run(proc, path, limits.output_bytes, out={out_r: bytearray(), err_r: bytearray()})
        _supervise(run, status_r, bwrap_r, started + limits.wall_time_s)
    finally:
        for fd in (status_r, out_r, err_r, bwrap_r):
            if fd >= 0:
                os.close(fd)
    rc = proc.returncode
    exit_code = 128 - rc if rc < 0 else rc
    if run.limit is None and exit_code in (128 + signal.SIGXCPU, 128 + signal.SIGKILL) and not run.killed:
        run.hit(TIMEOUT)  # RLIMIT_CPU: SIGXCPU, then SIGKILL if that was ignored
    return SandboxResult(
        exit_code=exit_code,
        stdout=_text(run.out[out_r], limits.output_bytes),
        stderr=_text(run.out[err_r], limits.output_bytes),
        limit=run.limit,
        wall_time_s=time.monotonic() - started,
        backend=path,
    )


def _text(buf: bytearray, limit: int) -> str:
    return bytes(buf[:limit]).decode("utf-8", errors="replace")


def _launcher_source() -> str:
    return (Path(__file__).with_name("launcher.py")).read_text(encoding="utf-8")
