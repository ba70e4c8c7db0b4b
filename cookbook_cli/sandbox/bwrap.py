"""The bubblewrap path: `bwrap` builds a fresh mount, PID, network, IPC and UTS
namespace whose file system is read-only binds of the system and interpreter
folders, a size-capped /tmp and the run's own folder at /sandbox.

Run by root, bwrap keeps no user namespace (root's would map to the host's
root) and drops every capability but CAP_SETUID/CAP_SETGID, which the launcher
uses once to become a user of the run's own, shedding them; run by anyone
else, bwrap maps the user into a new user namespace with no capabilities."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from cookbook_cli.sandbox.interpreter import interpreter, interpreter_roots

WORKDIR = "/sandbox"
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _filesystem(tmp_bytes: int, python: str | None) -> list[str]:
    args: list[str] = []
    bound: list[str] = []
    for path in _SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            bound.append(path)
    for root in interpreter_roots(python):
        if any(root == b or root.startswith(b + "/") for b in bound):
            continue
        # Folders bwrap creates on the way are root's 0700 when it runs as root:
        # make them passable for the sandbox's user.
        parts = root.strip("/").split("/")
        for i in range(1, len(parts)):
            args += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i])]
        args += ["--ro-bind", root, root]
        bound.append(root)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    return args


def bwrap_command(workdir: str, status_fd: int, tmp_bytes: int, as_root: bool, python: str | None = None) -> list[str]:
    """The bwrap words before the program; the run's folder is at /sandbox."""
    exe = shutil.which("bwrap") or "bwrap"
    args = [exe, "--die-with-parent", "--new-session"]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if as_root:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    args += _filesystem(tmp_bytes, python)
    args += ["--bind", workdir, WORKDIR, "--chdir", WORKDIR, "--json-status-fd", str(status_fd)]
    return args


@functools.cache
def bwrap_problem() -> str | None:
    """Why the bwrap path cannot run here (None when it can): bwrap missing, or
    this kernel/container refusing its namespaces. Checked once per process."""
    if shutil.which("bwrap") is None:
        return "bwrap (bubblewrap) is not installed"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cookbook-sandbox-probe-") as d:
        r, w = os.pipe()
        try:
            cmd = bwrap_command(d, w, 2**20, os.geteuid() == 0) + [interpreter(), "-I", "-S", "-c", "pass"]
            proc = subprocess.run(cmd, pass_fds=(w,), capture_output=True, text=True, check=False)
        finally:
            os.close(r)
            os.close(w)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return f"bwrap cannot start a sandbox here: {lines[-1] if lines else f'exit status {proc.returncode}'}"
    return None
