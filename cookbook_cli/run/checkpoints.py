"""Checkpoint bookkeeping: save, record once written (with a sha256 of every
file), and pick the checkpoint a resumed run starts from.

A record in checkpoints.jsonl:

    {"step": 6, "epoch": 0, "batch": 6, "name": "step-000006", "final": false,
     "state_path": "weights/step-000006",
     "files": {"weights/step-000006/weights.safetensors": "<sha256>", ...},
     "time": 1764578400.0}

Paths inside the run directory are relative to it; a remote engine's paths
(`tinker://...`) are kept as they are and have no files to check.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.run.files import CHECKPOINTS

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import APIFuture, TrainingClient
    from cookbook_cli.run.directory import RunDir


@dataclass(frozen=True)
class Position:
    """Where a run stands: `step` steps done, next batch `batch` of epoch `epoch`."""

    step: int
    epoch: int
    batch: int

    @classmethod
    def of(cls, step: int, batches_per_epoch: int) -> Position:
        return cls(step, step // batches_per_epoch, step % batches_per_epoch)


def checkpoint_name(step: int, final: bool = False) -> str:
    return f"final-{step:06d}" if final else f"step-{step:06d}"


@dataclass
class PendingCheckpoint:
    position: Position
    name: str
    final: bool
    state: APIFuture[Any]
    sampler: APIFuture[Any] | None
    submitted: float


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Checkpointer:
    """Saves training state and records it in checkpoints.jsonl once it is
    completely written, so a resume never points at half a checkpoint.

    `submit` queues the saves behind whatever the client is doing (operations
    run in submission order); `finish` waits and records."""

    def __init__(self, run: RunDir, client: TrainingClient, on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.run = run
        self.client = client
        self.on_record = on_record

    def submit(self, position: Position, final: bool = False) -> PendingCheckpoint:
        name = checkpoint_name(position.step, final)
        state = _save(self.client.save_state, name)
        sampler = _save(self.client.save_weights_for_sampler, name) if final else None
        return PendingCheckpoint(position, name, final, state, sampler, time.monotonic())

    def finish(self, pending: PendingCheckpoint) -> dict[str, Any]:
        paths = {"state_path": pending.state.result().path}
        if pending.sampler is not None:
            paths["sampler_path"] = pending.sampler.result().path
        record: dict[str, Any] = {
            "step": pending.position.step,
            "epoch": pending.position.epoch,
            "batch": pending.position.batch,
            "name": pending.name,
            "final": pending.final,
            **{k: self.run.relative(v) for k, v in paths.items()},
        }
        files = self._hash_files(record)
        if files:
            record["files"] = files
        self.run.record_checkpoint(record)
        if self.on_record is not None:
            self.on_record(record)
        return record

    def _hash_files(self, record: Mapping[str, Any]) -> dict[str, str]:
        """sha256 of every file of the record's folders that lie inside the run."""
        files: dict[str, str] = {}
        for key in ("state_path", "sampler_path"):
            rel = record.get(key)
            if not isinstance(rel, str) or "://" in rel or Path(rel).is_absolute():
                continue
            self.run.claim(Path(rel).parts[0])
            folder = self.run.path / rel
            for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
                if f.is_file():
                    files[f.relative_to(self.run.path).as_posix()] = sha256_of(f)
        return files

    def save(self, position: Position, final: bool = False) -> dict[str, Any]:
        return self.finish(self.submit(position, final))


def _save(method: Any, name: str) -> APIFuture[Any]:
    # A run resumed after a crash may save under a name whose folder was written
    # but never recorded: replace it. Engines without `overwrite` get the name only.
    try:
        return method(name, overwrite=True)
    except TypeError:
        return method(name)


def check_record(record: Mapping[str, Any], number: int, path: Path) -> None:
    """A checkpoints.jsonl row must be a checkpoint record: anything else is a
    damaged file, never a reason to restart from step 0."""
    problem = None
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        problem = "no step" if "step" not in record else f"step {step!r} is not a count"
    elif not isinstance(record.get("state_path"), str) or not record["state_path"]:
        problem = "no state_path"
    elif "files" in record and not isinstance(record["files"], dict):
        problem = "files is not an object"
    if problem:
        raise CookbookError(
            f"{path / CHECKPOINTS}:{number} is not a checkpoint record ({problem}); "
            "remove that line, or start over with --if-exists overwrite"
        )


def damage(run: RunDir, record: Mapping[str, Any]) -> str | None:
    """What is wrong with a recorded checkpoint's files, or None when it is intact."""
    files = record.get("files") or {}
    for rel, digest in files.items():
        f = run.path / rel
        if not f.is_file():
            return f"{rel} is missing"
        if sha256_of(f) != digest:
            return f"{rel} fails its checksum"
    state = record["state_path"]
    if not files and "://" not in state and not Path(run.absolute(state)).exists():
        return f"{state} is missing"
    return None


def resume_position(record: Mapping[str, Any] | None, batches_per_epoch: int) -> Position:
    """The position a checkpoint record resumes from (step 0 without one); the
    record's epoch/batch must agree with the data, or the data changed."""
    if record is None:
        return Position(0, 0, 0)
    pos = Position.of(int(record["step"]), batches_per_epoch)
    if (record.get("epoch"), record.get("batch")) != (pos.epoch, pos.batch):
        raise CookbookError(
            f"checkpoint {record.get('name')!r} was saved at epoch {record.get('epoch')} batch {record.get('batch')}, "
            f"but with {batches_per_epoch} batches per epoch step {pos.step} is epoch {pos.epoch} batch {pos.batch}: "
            "the dataset or batch size changed; resume with the same data or pass --if-exists overwrite"
        )
    return pos
