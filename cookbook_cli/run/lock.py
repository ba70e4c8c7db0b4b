"""An OS file lock on a run directory: one run at a time uses it. The kernel
releases the lock when the process ends, however it ends (kill -9 included),
so a stale lock file never blocks the next run."""

from __future__ import annotations

import os
from pathlib import Path

from cookbook_cli.errors import CookbookError


class RunLocked(CookbookError):
    """Another process holds the run directory."""


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = holder_of(self.path)
            raise RunLocked(
                f"log directory {str(self.path.parent)!r} is in use by another run ({holder or 'another process'}); "
                "wait for it to finish, stop it, or choose another --log-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def holder_of(path: Path) -> str | None:
    """'pid N' of the process that last took the lock, if it says so."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def is_locked(path: Path) -> bool:
    """Whether a live process holds the lock at `path` (for `runs list`)."""
    import fcntl

    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
