"""The fallback path, where bwrap cannot run: resource limits, a new session
(process group) killed as a whole, an empty environment, the run's folder as
its working directory and HOME, and, under root, a user of the run's own.
Nothing else is isolated; `FALLBACK_WARNING` says what."""

from __future__ import annotations

import os
import stat
import warnings

from cookbook_cli.errors import CookbookError
from cookbook_cli.sandbox.interpreter import interpreter, interpreter_roots

FALLBACK_WARNING = (
    "sandbox: running without bubblewrap ({reason}): model-written code runs with resource limits only: "
    "it can use the network, read every file its user can read, write where its user can write (as root: "
    "world-writable places) and see other processes; a child that starts its own session survives the kill. "
    "Install bubblewrap (apt-get install bubblewrap) for the isolated path."
)


class SandboxWarning(UserWarning):
    """The sandbox runs without isolation (the fallback path)."""


_warned = False


def warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(FALLBACK_WARNING.format(reason=reason), SandboxWarning, stacklevel=3)


def _passable(path: str) -> bool:
    """Whether any user may reach `path` (every folder on the way other-executable)."""
    parts = os.path.realpath(path).strip("/").split("/")
    for i in range(len(parts)):
        mode = os.stat("/" + "/".join(parts[: i + 1])).st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return True


def check_unprivileged_interpreter(python: str | None) -> None:
    """Under root the fallback runs code as a user of its own, who must reach the interpreter."""
    for path in [interpreter(python), *interpreter_roots(python)]:
        if not _passable(path):
            raise CookbookError(
                f"the fallback sandbox runs code as an unprivileged user, who cannot reach {path} "
                "(a folder on the way is private); install bubblewrap (apt-get install bubblewrap), give another interpreter (python=...) "
                "or run as a non-root user"
            )
