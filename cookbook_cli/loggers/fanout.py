"""The loggers of one run, as one object the run lifecycle holds.

metrics.jsonl stays the source of truth and is written by the run itself;
trackers are extra. So a tracker that cannot open (package missing, not logged
in, network down) or fails later is reported in one line and dropped, and the
run continues with the others.

Resume: each logger's entry in `trackers.json` keeps what it needs to continue
the same tracker run (its id) and the last step it was given. A resumed run
restarts from its last checkpoint, so it computes again steps the tracker
already holds; those are not sent again, and every step reaches a tracker
once (the tracker keeps the first attempt's values, which a seeded run repeats).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cookbook_cli.loggers.base import FAILED, FINISHED, KILLED, LoggerContext, error_line, safe_config

STATE_FILE = "trackers.json"


def _default_warn(line: str) -> None:
    print(f"Warning: {line}", file=sys.stderr)


def read_state(run_dir: Path) -> dict[str, Any]:
    """The loggers' saved state of a run ({} when there is none or it is unreadable)."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def missing_modules(extra: Mapping[str, Any]) -> list[str]:
    """The modules a registered logger requires that are not installed (no import)."""
    requires = extra.get("requires") or ()
    if isinstance(requires, str):
        requires = (requires,)
    return [m for m in requires if importlib.util.find_spec(m) is None]


def install_hint(extra: Mapping[str, Any]) -> str:
    pip_extra = extra.get("extra")
    return f"pip install 'cookbook-cli[{pip_extra}]'" if pip_extra else f"pip install {' '.join(missing_modules(extra))}"


class _Open:
    def __init__(self, name: str, obj: Any, skip_through: int) -> None:
        self.name = name
        self.obj = obj
        self.skip_through = skip_through  # steps the tracker already holds (resume)


class Loggers:
    """Fan-out to the run's open loggers. Thread-safe; `close()` is idempotent."""

    def __init__(self, run_dir: Path, warn: Callable[[str], None] | None = None) -> None:
        self.run_dir = run_dir
        self._warn = warn or _default_warn
        self._open: list[_Open] = []
        self._state: dict[str, Any] = read_state(run_dir)
        self._state_written = False
        self._claimed: list[Path] = []
        self._lock = threading.RLock()
        self._closed = False

    # -- what the lifecycle asks ---------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The loggers still open."""
        return [o.name for o in self._open]

    def written_paths(self) -> list[Path]:
        """Paths (relative to the run directory) that these loggers wrote or may
        write: `trackers.json` and each tracker's own folder."""
        paths = list(self._claimed)
        if self._state_written or (self.run_dir / STATE_FILE).exists():
            paths.insert(0, Path(STATE_FILE))
        return [p for p in dict.fromkeys(paths) if (self.run_dir / p).exists()]

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        with self._lock:
            changed = False
            for o in list(self._open):
                if step <= o.skip_through:
                    continue
                if self._call(o, "log_metrics", step, metrics):
                    entry = self._state.setdefault(o.name, {})
                    if entry.get("last_step", -1) < step:
                        entry["last_step"] = step
                        changed = True
            if changed:
                self._save_state()

    def log_checkpoint(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            for o in list(self._open):
                self._call(o, "log_checkpoint", dict(record))

    def log_html(self, name: str, path: str | Path, step: int) -> None:
        self._log_file("log_html", name, path, step)

    def log_image(self, name: str, path: str | Path, step: int) -> None:
        self._log_file("log_image", name, path, step)

    def close(self, error: BaseException | None = None) -> None:
        """Close every logger once: "finished" without `error`, "killed" for a
        KeyboardInterrupt, "failed" otherwise. Later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            status = FINISHED if error is None else KILLED if isinstance(error, KeyboardInterrupt) else FAILED
            for o in self._open:
                close = getattr(o.obj, "close", None)
                if close is None:
                    continue
                try:
                    close(status)
                except Exception as e:  # noqa: BLE001 - one tracker's failure must not hide the run's outcome
                    self._warn(f"logger {o.name!r} failed to close: {error_line(e)}")
            self._open = []

    def __enter__(self) -> Loggers:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)

    # -- inside ----------------------------------------------------------------------------------
    def _log_file(self, method: str, name: str, path: str | Path, step: int) -> None:
        p = Path(path)
        p = p if p.is_absolute() else self.run_dir / p
        with self._lock:
            for o in list(self._open):
                if step > o.skip_through:
                    self._call(o, method, name, p, step)

    def _call(self, o: _Open, method: str, *args: Any) -> bool:
        fn = getattr(o.obj, method, None)
        if fn is None:
            return True
        try:
            fn(*args)
            return True
        except Exception as e:  # noqa: BLE001 - a tracker's failure is reported, never fatal
            self._drop(o, f"failed in {method}", e)
            return False

    def _drop(self, o: _Open, what: str, e: BaseException) -> None:
        self._open.remove(o)
        others = f"; the run continues with {', '.join(self.names)}" if self.names else "; the run continues"
        self._warn(f"logger {o.name!r} {what} and was dropped{others} (metrics.jsonl is complete): {error_line(e)}")
        try:
            close = getattr(o.obj, "close", None)
            if close is not None:
                close(FAILED)
        except Exception:  # noqa: BLE001, S110 - already reported
            pass

    def _open_one(self, name: str, entry: Any, options: Mapping[str, str], config: Mapping[str, Any], resuming: bool) -> None:
        missing = missing_modules(entry.extra)
        if missing:
            self._warn(
                f"logger {name!r} is not available: {', '.join(missing)} is not installed ({install_hint(entry.extra)}); "
                "the run continues without it"
            )
            return
        saved = self._state.get(name, {}) if resuming else {}
        ctx = LoggerContext(
            name=name,
            run_dir=self.run_dir,
            config=config,
            resuming=resuming,
            options=dict(options),
            state=dict(saved.get("state", {})),
            warn=self._warn,
            claimed=self._claimed,
        )
        try:
            obj = entry.obj(ctx)
        except Exception as e:  # noqa: BLE001 - not logged in, network down, a broken plugin
            self._warn(
                f"logger {name!r}{_by(entry)} failed to open and was dropped; the run continues (metrics.jsonl is complete): "
                f"{error_line(e)}"
            )
            return
        last_step = int(saved.get("last_step", -1)) if resuming else -1
        self._state[name] = {"state": ctx.state, **({"last_step": last_step} if last_step >= 0 else {})}
        self._open.append(_Open(name, obj, last_step))

    def _save_state(self) -> None:
        path = self.run_dir / STATE_FILE
        tmp = path.with_name(f".{STATE_FILE}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(self._state, indent=2, default=str) + "\n", encoding="utf-8")
            os.replace(tmp, path)  # no fsync: surviving kill -9 needs only the page cache
        except OSError as e:
            self._warn(f"cannot write {path}: {e.strerror}; a resumed run may start new tracker runs")
            return
        self._state_written = True


def open_loggers(
    names: Sequence[str],
    options: Mapping[str, Mapping[str, str]] | None,
    run_dir: Path,
    config: Mapping[str, Any],
    resuming: bool,
    warn: Callable[[str], None] | None = None,
) -> Loggers:
    """Open the named loggers for a run whose directory exists. Call
    `validate_logger_names(names, options)` first (it raises on a bad name or
    option); here a logger that fails to open is warned about and skipped.

    `config` is the run's resolved config; it is redacted again before any
    tracker sees it. `resuming` continues each tracker's run from the state
    saved in `trackers.json`."""
    from cookbook_cli.loggers.options import validate_logger_names
    from cookbook_cli.plugins import registry

    options = options or {}
    validate_logger_names(names, options)
    loggers = Loggers(Path(run_dir), warn)
    if not names:
        return loggers
    clean = safe_config(config)
    for name in names:
        loggers._open_one(name, registry.loggers.get(name), options.get(name, {}), clean, resuming)
    if loggers._open:
        loggers._save_state()
    return loggers


def _by(entry: Any) -> str:
    """` (plugin X, register_loggers)` for a third party's logger: its failure is named to its authors."""
    from cookbook_cli.plugins.manager import BUILTIN_PLUGIN_NAME

    return "" if entry.plugin == BUILTIN_PLUGIN_NAME else f" (plugin {entry.plugin}, register_loggers)"
