"""One reader of a run directory, for everything that starts from an earlier
run: resume, `sample`/`chat`/`eval`/`export`, the DPO reference and
`init_from`, distillation teachers (like tinker-cookbook's
`checkpoint_utils.get_last_checkpoint`, which every recipe there shares).

For a path it answers: is it a run, or inside one (`run_containing`); the run's
`config.json` (`config`); its checkpoint records (`records`): the newest
(`latest`), the newest intact one (`latest_intact`, passing over checkpoints
whose files are missing or fail their checksum), the final sampler weights
(`final_sampler`) and a checkpoint named by a record name, a step or a path
(`checkpoint`); and a recorded path made absolute (`absolute`).

It only reads: what a resumed run rewrites stays with the lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError, UnknownNameError
from cookbook_cli.run.checkpoints import check_record, damage
from cookbook_cli.run.directory import RunDir, is_run
from cookbook_cli.run.files import CONFIG, read_json

Record = dict[str, Any]


def run_containing(path: Path) -> Path | None:
    """The run directory holding `path` (itself or a parent folder), if any."""
    for folder in [path, *path.parents]:
        if folder.is_dir() and is_run(folder):
            return folder
    return None


class RunReader:
    """What a run directory holds, read from its files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.dir = RunDir(self.path)

    @classmethod
    def open(cls, path: str | Path) -> RunReader:
        """The run at `path`; one line when there is none."""
        reader = cls(path)
        if not reader.path.is_dir():
            raise CookbookError(f"run directory {str(reader.path)!r} does not exist")
        if not is_run(reader.path):
            raise CookbookError(f"{str(reader.path)!r} holds no cookbook run (no cookbook-run.json or config.json with checkpoints)")
        return reader

    @classmethod
    def at(cls, path: str | Path) -> RunReader | None:
        """The run at `path` itself, or None when it is no run directory."""
        p = Path(path).expanduser()
        return cls(p) if p.is_dir() and is_run(p) else None

    # -- config --------------------------------------------------------------------------------
    def stored_config(self) -> dict[str, Any]:
        """config.json as stored, unchecked ({} when the run has none)."""
        file = self.path / CONFIG
        config = read_json(file) if file.is_file() else {}
        return config if isinstance(config, dict) else {}

    def config(self) -> dict[str, Any]:
        """The run's config.json, which must name its model and engine."""
        file = self.path / CONFIG
        if not file.is_file():
            raise CookbookError(f"run {str(self.path)!r} has no {CONFIG}; it cannot say which model it trained")
        config = self.stored_config()
        if not isinstance(config.get("model"), str) or not isinstance(config.get("engine"), str):
            raise CookbookError(f"{file} names no model and engine; is this a cookbook run?")
        return config

    def base_model(self) -> str:
        return str(self.config()["model"])

    # -- checkpoints ---------------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Every checkpoint record, oldest first."""
        return self.dir.checkpoints()

    def latest(self) -> Record | None:
        records = self.records()
        return records[-1] if records else None

    def latest_intact(self, say: Callable[[str], None]) -> tuple[list[Record], int | None]:
        """All records (each checked to be one) and the index of the newest
        whose files are intact, saying which damaged ones it passes over; None
        when no record exists. All recorded and all damaged is an error."""
        records = self.records()
        for number, record in enumerate(records, start=1):
            check_record(record, number, self.path)
        for i in range(len(records) - 1, -1, -1):
            problem = damage(self.dir, records[i])
            if problem is None:
                return records, i
            older = f"; trying {records[i - 1].get('name')}" if i > 0 else ""
            say(f"Checkpoint {records[i].get('name')} is damaged ({problem}){older}")
        if records:
            raise CookbookError(
                f"no intact checkpoint is left in {str(self.path)!r} ({len(records)} recorded, all damaged); "
                "start over with --if-exists overwrite"
            )
        return records, None

    def final_sampler(self) -> Record | None:
        """The newest final record with sampler weights (a finished run's), if any."""
        finals = [r for r in self.records() if r.get("final") and r.get("sampler_path")]
        return finals[-1] if finals else None

    def checkpoint(self, name: str | None = None) -> Record:
        """The record `name` picks: a record name, a step, or a recorded path
        (state or sampler); the newest when None."""
        records = self.records()
        if not records:
            raise CookbookError(
                f"run {str(self.path)!r} recorded no checkpoint yet; wait for its first save, or use --model for the base model"
            )
        if name is None:
            return records[-1]
        named = [r for r in records if r.get("name") == name]
        if named:
            return named[-1]
        if name.isdigit():
            at_step = [r for r in records if r.get("step") == int(name)]
            if at_step:
                return at_step[-1]
        for r in reversed(records):
            for key in ("sampler_path", "state_path"):
                if self._is_recorded_path(r.get(key), name):
                    return r
        raise UnknownNameError(
            "checkpoint", name, [str(r.get("name")) for r in records],
            f"Give a name, a step or a checkpoint path recorded in {self.path}/checkpoints.jsonl (cookbook runs show {self.path}).",
        )

    def _is_recorded_path(self, recorded: Any, given: str) -> bool:
        if not isinstance(recorded, str):
            return False
        if recorded == given:
            return True
        if "://" in given or "://" in recorded:
            return False
        try:
            return Path(self.absolute(recorded)).resolve() == Path(given).expanduser().resolve()
        except OSError:
            return False

    def absolute(self, path: str) -> str:
        """A recorded path as the engine takes it (paths inside the run are stored relative)."""
        return self.dir.absolute(path)

    def path_of(self, record: Record, key: str) -> str | None:
        """The record's `state_path` or `sampler_path`, absolute; None when it has none."""
        value = record.get(key)
        return self.absolute(value) if isinstance(value, str) and value else None
