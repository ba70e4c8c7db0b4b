"""The Python that runs sandboxed code, started with `-I -S` (isolated, no
site-packages: the standard library only). By default the interpreter running
cookbook; `run_code(python=...)` names another."""

from __future__ import annotations

import os
import shutil
import sys

from cookbook_cli.errors import CookbookError


def interpreter(python: str | None = None) -> str:
    """The real file of the interpreter (not a virtual environment's link to it)."""
    if python is None:
        return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    found = shutil.which(python)
    if found is None:
        raise CookbookError(f"sandbox interpreter {python!r} not found (give a path or a command on PATH)")
    return os.path.realpath(found)


def interpreter_roots(python: str | None = None) -> list[str]:
    """Folders the interpreter needs to start and import its standard library:
    its installation prefix (`<prefix>/bin/python`)."""
    roots = {os.path.dirname(os.path.dirname(interpreter(python)))}
    if python is None:
        roots.add(os.path.realpath(sys.base_prefix))
    return sorted(roots)
