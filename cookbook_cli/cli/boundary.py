"""The one error boundary every command runs inside (see `main._Group`).

Failures come in classes, so each class gets one explanation here rather than a
check at each place it can happen: an OS error on a path (named with the option
or `key=` word that gave it), text that is not Unicode, input nested too deeply
for the parser, memory running out, and plugin code that raised (named by
distribution, hook and name). Anything else is a bug: one line with its type and
how to see the traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from cookbook_cli.errors import CookbookError, first_line

DEBUG_ENV = "COOKBOOK_DEBUG"

_WHAT_TO_DO = {
    errno.ENAMETOOLONG: "use a shorter path (at most 255 bytes per name)",
    errno.EACCES: "check its permissions, or choose another place",
    errno.EPERM: "check its permissions, or choose another place",
    errno.ENOSPC: "free some disk space, or choose another disk",
    errno.EDQUOT: "free some disk space (the quota is reached)",
    errno.EISDIR: "give a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "check the path",
    errno.EROFS: "the file system is read-only: choose another place",
    errno.EEXIST: "remove it or choose another name",
    errno.ELOOP: "the path has a symbolic-link loop",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
}


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _short_path(path: str) -> str:
    return repr(path) if len(path) <= 80 else f"{path[:40]!r}...{path[-20:]!r} ({len(path)} characters)"


def _option_for(path: str, args: Sequence[str]) -> str:
    """The option (`--out`) or config word (`log_dir=`) whose value gave `path`."""
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if eq and value and (path == value or path.startswith(value.rstrip("/") + "/") or value.startswith(path)):
            return name if name.startswith("-") else f"{name}="
        if i and args[i - 1].startswith("-") and arg and (path == arg or path.startswith(arg.rstrip("/") + "/")):
            return args[i - 1]
    for arg in args:  # a positional argument (a run directory)
        if arg and not arg.startswith("-") and (path == arg or path.startswith(arg.rstrip("/") + "/")):
            return "argument"
    return ""


def _os_error(e: OSError, args: Sequence[str]) -> str:
    reason = e.strerror or first_line(e)
    todo = _WHAT_TO_DO.get(e.errno or 0, "")
    if not e.filename:
        return f"{reason}{f'; {todo}' if todo else ''}"
    path = os.fsdecode(e.filename)
    option = _option_for(path, args)
    given = f" (from {option})" if option and option != "argument" else ""
    return f"path {_short_path(path)}{given}: {reason}{f'; {todo}' if todo else ''}"


def explain(e: BaseException, args: Sequence[str]) -> str | None:
    """One line for a failure of a known class; None for a bug."""
    from cookbook_cli.plugins import registry

    if isinstance(e, CookbookError):
        return str(e)
    plugin = registry.attribute(e)
    if plugin is not None:
        return plugin.line()
    if isinstance(e, OSError):
        return _os_error(e, args)
    if isinstance(e, UnicodeError):
        reason = getattr(e, "reason", "") or first_line(e)
        return f"text that is not valid Unicode ({reason}); give UTF-8 text (a lone surrogate such as \\ud800 is not text)"
    if isinstance(e, RecursionError):
        return "input nested too deeply to process (thousands of nested [ or {); flatten it"
    if isinstance(e, MemoryError):
        return "out of memory; use a smaller model, batch or input"
    return None


def unexpected(e: BaseException) -> str:
    return (
        f"unexpected {type(e).__name__}: {first_line(e)}. This is a bug in cookbook; "
        f"run again with `cookbook --debug ...` (or {DEBUG_ENV}=1) to see the traceback, and report it"
    )
