"""A run's log directory and the manifest of what cookbook wrote in it.

    config.json          the resolved config (secrets redacted)
    metrics.jsonl        one object per step
    checkpoints.jsonl    one record per saved state, paths relative to the run
    cookbook-run.json    the manifest: what cookbook wrote here
    .lock                held while a run uses the directory
    weights/ ...         whatever the engine and recipe claim (checkpoints,
                         transcripts, caches), each listed in the manifest

`--if-exists overwrite` removes exactly the manifest's entries, so files a user
keeps beside a run survive, and a folder that holds no cookbook run (no
manifest) is never emptied.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.files import (
    CHECKPOINTS,
    CONFIG,
    LOCK,
    MANIFEST,
    METRICS,
    append_jsonl,
    read_json,
    read_jsonl,
    write_json_atomic,
)

FORMAT = "cookbook-run/1"
#: What every run writes; a folder holding any of these without a manifest holds someone else's files.
OWN_FILES = (CONFIG, METRICS, CHECKPOINTS, MANIFEST, LOCK)


def is_run(path: Path) -> bool:
    """Whether `path` holds a cookbook run (its manifest, or a run written
    before manifests existed: a config.json with an engine, and metrics or checkpoints)."""
    if (path / MANIFEST).is_file():
        return True
    return _legacy_run(path)


def _legacy_run(path: Path) -> bool:
    if not (path / CONFIG).is_file() or not any((path / f).is_file() for f in (METRICS, CHECKPOINTS)):
        return False
    try:
        config = read_json(path / CONFIG)
    except CookbookError:
        return False
    return isinstance(config, dict) and "engine" in config and "model" in config


def foreign_entries(path: Path) -> list[str]:
    """Names cookbook would write that already exist in a folder holding no run."""
    return [name for name in OWN_FILES if name != LOCK and (path / name).exists()]


class RunDir:
    """An opened log directory (the lifecycle holds its lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- the manifest -------------------------------------------------------------------------
    def entries(self) -> list[str]:
        if (self.path / MANIFEST).is_file():
            manifest = read_json(self.path / MANIFEST)
            if isinstance(manifest, dict) and isinstance(manifest.get("entries"), list):
                return [str(e) for e in manifest["entries"]]
            raise CookbookError(f"{self.path / MANIFEST} is not a cookbook run manifest; restore it or choose another --log-dir")
        if _legacy_run(self.path):
            legacy = [*OWN_FILES, "weights", "sampler_weights", "transcripts"]
            return [e for e in legacy if (self.path / e).exists()]
        return []

    def claim(self, *names: str) -> None:
        """Add top-level entries (files or folders) to the manifest."""
        entries = self.entries()
        new = [n for n in names if n not in entries]
        if new or not (self.path / MANIFEST).is_file():
            merged = sorted({*entries, *new, MANIFEST})
            write_json_atomic(self.path / MANIFEST, {**self.info(), "format": FORMAT, "entries": merged})

    def info(self) -> dict[str, Any]:
        """What the manifest says of the run besides its entries (`recipe`, `total_steps`)."""
        if not (self.path / MANIFEST).is_file():
            return {}
        manifest = read_json(self.path / MANIFEST)
        if not isinstance(manifest, dict):
            return {}
        return {k: v for k, v in manifest.items() if k not in ("format", "entries")}

    def describe(self, **info: Any) -> None:
        """Record facts about the run in its manifest (for `cookbook runs list`)."""
        current = self.info()
        if all(current.get(k) == v for k, v in info.items()):
            return
        self.claim()
        write_json_atomic(self.path / MANIFEST, {**current, **info, "format": FORMAT, "entries": self.entries()})

    def subdir(self, name: str) -> Path:
        """A folder of the run, claimed in the manifest."""
        self.claim(name)
        folder = self.path / name
        folder.mkdir(exist_ok=True)
        return folder

    def remove_entries(self, keep: Iterable[str] = ()) -> None:
        """Delete what cookbook wrote here (the manifest's entries) and nothing else."""
        keep = set(keep)
        for name in self.entries():
            if name in keep or "/" in name or name in ("", ".", ".."):
                continue
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        if MANIFEST not in keep:
            (self.path / MANIFEST).unlink(missing_ok=True)

    def remove_scratch(self) -> None:
        """Temp files and folders a killed write left (`.<name>.tmp-*`) in the run and its folders."""
        for folder in [self.path, *(self.path / e for e in self.entries() if (self.path / e).is_dir())]:
            for leftover in folder.glob(".*.tmp-*"):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)

    # -- files ---------------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def checkpoints_path(self) -> Path:
        return self.path / CHECKPOINTS

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, {"step": step, **metrics})

    def record_checkpoint(self, record: dict[str, Any]) -> None:
        """Record a checkpoint whose files are already completely written."""
        append_jsonl(self.checkpoints_path, {**record, "time": time.time()})

    def checkpoints(self) -> list[dict[str, Any]]:
        return read_jsonl(self.checkpoints_path)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def relative(self, path: str) -> str:
        """A path the engine returned, relative to the run when it lies inside it
        (a copied or moved run then finds its own files); others unchanged."""
        if "://" in path:
            return path
        p = Path(path)
        if not p.is_absolute():
            return path
        try:
            return p.resolve().relative_to(self.path.resolve()).as_posix()
        except ValueError:
            return path

    def absolute(self, path: str) -> str:
        """The inverse of `relative`: what to hand back to the engine."""
        if "://" in path or Path(path).is_absolute():
            return path
        return str((self.path / path).resolve())
