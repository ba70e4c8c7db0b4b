"""The life of a run, the same for every recipe (`train sl|rl|dpo|distill`).

A recipe validates its whole config and builds its data first (nothing is
loaded or written before that), then:

    with open_run(RunSettings(...)) as run:     # RunSettings.options: the RunOptions
        client = run.training_client(model, rank, seed)     # created, or resumed
        start = run.start_position(batches_per_epoch)
        ... the loop: run.log_metrics(step, row); run.checkpointer.submit/finish ...

`open_run`, in this order:

1. checks the log directory: an empty name, a file, `/` or the home folder,
   or a folder of someone else's files is refused; `--if-exists` decides what
   happens to an existing run (resume, overwrite, fail; ask on a terminal);
   resuming compares the stored config, field by field, except the fields the
   recipe says may change;
2. creates the engine service (a missing API key leaves nothing behind);
3. creates the directory and takes its lock (a second run on it fails at once,
   naming the process that holds it); overwrite removes only what the
   manifest lists; temp files of killed writes are removed;
4. on resume, picks the newest checkpoint whose files pass their checksums
   (saying so when it passes over a damaged one) and drops the metrics after
   it, so every step is logged once; writes config.json;
5. on every way out: Ctrl-C and SIGTERM become one line saying where the run
   stopped and the command that resumes it; the service is closed; a run
   that this invocation created and that recorded nothing is removed again.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.config import config_differences, redact
from cookbook_cli.errors import CookbookError, RunInterrupted
from cookbook_cli.run.checkpoints import Checkpointer, Position, resume_position
from cookbook_cli.run.directory import OWN_FILES, RunDir, foreign_entries, is_run
from cookbook_cli.run.files import CHECKPOINTS, CONFIG, LOCK, METRICS, read_json, read_jsonl, rewrite_jsonl, write_json_atomic
from cookbook_cli.run.lock import RunLock, is_locked
from cookbook_cli.run.options import RunOptions

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import TrainingClient


class IfExists(str, Enum):
    RESUME = "resume"
    OVERWRITE = "overwrite"
    FAIL = "fail"
    ASK = "ask"




@dataclass
class RunSettings:
    """What the lifecycle needs to know of a recipe's resolved config, and how to run it."""

    recipe: str  # "sl", "rl", ...: names the run in messages
    log_dir: str | Path
    config: Mapping[str, Any]  # JSON-ready resolved config, stored as config.json
    engine: str
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    resume_may_change: Sequence[str] = ("log_dir",)  # config fields a resumed run may change
    options: RunOptions = field(default_factory=RunOptions)

    def stored_config(self) -> dict[str, Any]:
        """config.json: the recipe's config, and the trackers (which a resumed run may change)."""
        from cookbook_cli.loggers.options import redact_options

        out = dict(self.config)
        if self.options.log_to:
            out["loggers"] = {"names": list(self.options.log_to), "options": redact_options(self.options.logger_options)}
        return out


class Run:
    """An open run: its directory, the engine service and where it resumes from."""

    def __init__(self, settings: RunSettings, directory: RunDir, service: Any, resume_from: dict[str, Any] | None,
                 fresh: bool, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.dir = directory
        self.path = directory.path
        self.service = service
        self.resume_from = resume_from
        self.fresh = fresh
        self.say = say
        self.total_steps: int | None = None
        self.last_step_logged: int | None = None
        self.last_checkpoint_step: int | None = int(resume_from["step"]) if resume_from else None
        self._client: Any = None
        self._checkpointer: Checkpointer | None = None
        self.loggers: Any = None  # cookbook_cli.loggers.Loggers, opened by open_run

    # -- training client -----------------------------------------------------------------------
    def training_client(self, model: str, rank: int, seed: int) -> TrainingClient:
        """A new training client, or, when resuming, one restored with its optimizer state."""
        client = self.service.create_lora_training_client(model, rank=rank, seed=seed)
        if self.resume_from is not None:
            with self._restoring() as path:
                client.load_state_with_optimizer(path).result()
        self._client = client
        return client

    async def training_client_async(self, model: str, rank: int, seed: int) -> TrainingClient:
        client = await self.service.create_lora_training_client_async(model, rank=rank, seed=seed)
        if self.resume_from is not None:
            with self._restoring() as path:
                await (await client.load_state_with_optimizer_async(path))
        self._client = client
        return client

    @contextmanager
    def _restoring(self) -> Iterator[str]:
        """The state to resume from; a failure to load it is one line saying how to start over."""
        assert self.resume_from is not None
        try:
            yield self.dir.absolute(self.resume_from["state_path"])
        except CookbookError as e:
            raise CookbookError(f"{self._cannot_load()}: {e}") from None

    def _cannot_load(self) -> str:
        assert self.resume_from is not None
        return f"cannot resume from checkpoint {self.resume_from.get('name')!r} (start over with --if-exists overwrite)"

    @property
    def checkpointer(self) -> Checkpointer:
        if self._checkpointer is None:
            if self._client is None:
                raise CookbookError("the run has no training client yet: call run.training_client(...) first")
            self._checkpointer = Checkpointer(self.dir, self._client, on_record=self._recorded)
        return self._checkpointer

    def save_final(self, position: Position) -> dict[str, Any]:
        """The final checkpoint (state and sampler weights): the one recorded
        already when a finished run is resumed, else saved now."""
        records = self.dir.checkpoints()
        last = records[-1] if records else None
        if last is not None and last.get("final") and last.get("step") == position.step:
            return last
        return self.checkpointer.save(position, final=True)

    def _recorded(self, record: dict[str, Any]) -> None:
        self.last_checkpoint_step = int(record["step"])
        if self.loggers is not None:
            self.loggers.log_checkpoint(record)

    # -- the loop's bookkeeping ------------------------------------------------------------------
    def start_position(self, batches_per_epoch: int, total_steps: int | None = None) -> Position:
        """Where the loop starts: step 0, or the resumed checkpoint's position."""
        start = resume_position(self.resume_from, batches_per_epoch)
        if total_steps is not None:
            self.total_steps = total_steps
            self.dir.describe(total_steps=total_steps)
            if start.step > total_steps:
                raise CookbookError(
                    f"the last checkpoint in {str(self.path)!r} is at step {start.step}, past this run's {total_steps} steps; "
                    "resume with the same settings (or a larger --max-steps), or pass --if-exists overwrite"
                )
        self.say(f"Log directory: {self.path.resolve()}")
        if self.resume_from is not None:
            of = f" of {total_steps}" if total_steps is not None else ""
            self.say(f"Resuming from checkpoint {self.resume_from.get('name')} (step {start.step}{of})")
        return start

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        """One row of metrics.jsonl (the source of truth), then the trackers."""
        self.dir.log_metrics(step, row)
        if not row.get("final"):
            self.last_step_logged = step
        if self.loggers is not None:
            self.loggers.log_metrics(step, row)

    def log_html(self, name: str, path: Path, step: int) -> None:
        """An HTML transcript written under the run, shown by trackers that can."""
        if self.loggers is not None:
            self.loggers.log_html(name, path, step)

    def metrics(self) -> list[dict[str, Any]]:
        return self.dir.metrics()

    def subdir(self, name: str) -> Path:
        """A folder of the run (transcripts, caches), listed in its manifest."""
        return self.dir.subdir(name)

    def resume_hint(self) -> str:
        argv = self.settings.options.argv
        return resume_command(argv, self.path) if argv else (
            f"call train(config, if_exists='resume') with log_dir={str(self.path)!r}"
        )


# -- opening ---------------------------------------------------------------------------------------


def _ask(path: Path) -> IfExists:
    if not sys.stdin.isatty():
        raise CookbookError(
            f"log directory {str(path)!r} already holds a run; pass --if-exists resume, "
            "--if-exists overwrite or --if-exists fail (or choose another --log-dir)"
        )
    import typer

    answer = typer.prompt(f"{path} already holds a run: [r]esume, [o]verwrite or [f]ail?", default="r")
    return {"r": IfExists.RESUME, "o": IfExists.OVERWRITE}.get(answer.strip().lower()[:1], IfExists.FAIL)


def check_log_dir(log_dir: str | Path) -> Path:
    """The log directory, refused in one line when it can never hold a run."""
    if str(log_dir).strip() == "":
        raise CookbookError("--log-dir is empty; give a directory for the run, or leave it out for runs/<recipe>-...")
    path = Path(log_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise CookbookError(f"log directory {str(path)!r} is a file; choose another --log-dir")
    resolved = path.resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise CookbookError(f"refusing to use {str(path)!r} as a log directory; choose a folder for the run, e.g. runs/my-run")
    return path


def decide(path: Path, if_exists: str) -> IfExists:
    """What to do with `path`: resume, overwrite or fail (asking on a terminal).
    A folder without a run needs no decision; one with someone else's files is refused."""
    mode = IfExists(if_exists)  # checked once, by RunOptions
    if not path.is_dir():
        return IfExists.RESUME if mode is IfExists.ASK else mode
    if is_locked(path / LOCK):
        RunLock(path / LOCK).acquire()  # raises, naming the process that holds it
    _check_writable(path)
    if not is_run(path):
        foreign = foreign_entries(path)
        if foreign:
            raise CookbookError(
                f"log directory {str(path)!r} holds files cookbook did not write ({', '.join(foreign)}) and no cookbook run; "
                "choose another --log-dir"
            )
        if mode is IfExists.OVERWRITE and any(path.iterdir()):
            raise CookbookError(
                f"log directory {str(path)!r} does not hold a cookbook run, so --if-exists overwrite will not empty it; "
                "choose another --log-dir"
            )
        return IfExists.RESUME if mode is IfExists.ASK else mode
    mode = _ask(path) if mode is IfExists.ASK else mode
    if mode is IfExists.FAIL:
        raise CookbookError(
            f"log directory {str(path)!r} already holds a run; pass --if-exists resume or --if-exists overwrite, "
            "or choose another --log-dir"
        )
    return mode


def _check_writable(path: Path) -> None:
    """Try it: permission bits say nothing to root, and a read-only mount or an
    immutable folder refuses writes whatever they say."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=path, prefix=".cookbook-probe-"):
            pass
    except OSError as e:
        raise CookbookError(
            f"log directory {str(path)!r} is not writable ({e.strerror or e}); fix its permissions or choose another --log-dir"
        ) from None


def check_same_config(path: Path, config: Mapping[str, Any], may_change: Sequence[str]) -> None:
    """Resuming with other settings would silently change the data order or the
    schedule: refuse, naming what differs."""
    if not (path / CONFIG).is_file():
        return
    old = read_json(path / CONFIG)
    if not isinstance(old, dict):
        raise CookbookError(f"{path / CONFIG} is not a config object; restore it or start over with --if-exists overwrite")
    new = _as_json(config)
    diffs = config_differences(old, new, ignore=may_change)
    if diffs:
        raise CookbookError(
            f"log directory {str(path)!r} holds a run with other settings ({'; '.join(diffs[:4])}); "
            f"a resumed run may change only {', '.join(f for f in may_change if f != 'log_dir')}: "
            "resume with the same settings, or pass --if-exists overwrite"
        )


def _as_json(config: Mapping[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(redact(dict(config)), default=str))


def pick_checkpoint(directory: RunDir, say: Callable[[str], None]) -> dict[str, Any] | None:
    """The newest intact checkpoint (the run directory reader's pick); the
    records after it, and a torn last line, are dropped (the run continues from it)."""
    from cookbook_cli.run.reader import RunReader

    records, i = RunReader(directory.path).latest_intact(say)
    if i is None:
        if directory.checkpoints_path.exists():
            rewrite_jsonl(directory.checkpoints_path, [])  # drops a torn line
        return None
    if i < len(records) - 1 or directory.checkpoints_path.read_bytes()[-1:] not in (b"", b"\n"):
        rewrite_jsonl(directory.checkpoints_path, records[: i + 1])
    return records[i]


@contextmanager
def open_run(settings: RunSettings) -> Iterator[Run]:
    """Open (create, resume or overwrite) a run directory for a recipe; see the module docstring."""
    from cookbook_cli.engines import create_service_for_run

    from cookbook_cli.loggers.options import validate_logger_names

    say = settings.options.say
    service = settings.options.service
    path = check_log_dir(settings.log_dir)
    validate_logger_names(settings.options.log_to, settings.options.logger_options)
    mode = decide(path, settings.options.if_exists)
    if mode is IfExists.RESUME and is_run(path):
        check_same_config(path, settings.stored_config(), (*settings.resume_may_change, "loggers"))

    owns_service = service is None
    if owns_service:
        service = create_service_for_run(settings.engine, path, dict(settings.engine_options))
    created = not path.exists()
    lock = RunLock(path / LOCK)
    run: Run | None = None
    error: BaseException | None = None
    restore_sigterm = _sigterm_as_interrupt()
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CookbookError(f"cannot create log directory {str(path)!r}: {e.strerror or e}") from None
        lock.acquire()
        directory = RunDir(path)
        if mode is IfExists.OVERWRITE and is_run(path):
            directory.remove_entries(keep=[LOCK])
        fresh = not is_run(path)
        directory.claim(*OWN_FILES)
        directory.describe(recipe=settings.recipe)
        directory.remove_scratch()
        resume_from = None if fresh else pick_checkpoint(directory, say)
        if not fresh:
            keep_before = resume_from["step"] if resume_from else 0
            rewrite_jsonl(directory.metrics_path, [r for r in read_jsonl(directory.metrics_path) if r.get("step", 0) < keep_before])
        stored = redact(settings.stored_config())
        write_json_atomic(path / CONFIG, stored)
        run = Run(settings, directory, service, resume_from, fresh, say)
        run.loggers = _open_loggers(settings, directory, stored, resuming=not fresh, say=say)
        try:
            yield run
        except (KeyboardInterrupt, asyncio.CancelledError) as e:
            error = e
            raise RunInterrupted(_interrupted_message(run)) from None
        except BaseException as e:
            error = e
            raise
    finally:
        restore_sigterm()
        if run is not None and run.loggers is not None:
            run.loggers.close(error)
            directory.claim(*(p.parts[0] for p in run.loggers.written_paths()))
        try:
            if owns_service and callable(getattr(service, "close", None)):
                service.close()  # the engine's worker thread, once its queued work is done
        finally:
            if run is not None and run.fresh and _recorded_nothing(run.dir):
                _remove_run(run.dir, remove_folder=created)
            elif run is None and created:
                _remove_run(RunDir(path), remove_folder=True)
            lock.release()


def _open_loggers(settings: RunSettings, directory: RunDir, config: Mapping[str, Any], resuming: bool, say: Callable[[str], None]) -> Any:
    from cookbook_cli.loggers import open_loggers

    loggers = open_loggers(settings.options.log_to, settings.options.logger_options, directory.path, config, resuming, warn=say)
    directory.claim(*(p.parts[0] for p in loggers.written_paths()))
    return loggers


def _recorded_nothing(directory: RunDir) -> bool:
    try:
        return not directory.checkpoints() and not directory.metrics()
    except CookbookError:
        return False


def _remove_run(directory: RunDir, remove_folder: bool) -> None:
    """Undo a run that recorded nothing, so the same command works again as it was."""
    try:
        directory.remove_entries()
        for name in (CONFIG, METRICS, CHECKPOINTS, LOCK):
            (directory.path / name).unlink(missing_ok=True)
        if remove_folder:
            directory.path.rmdir()
    except OSError:
        pass  # something else is in it: leave the folder


def _interrupted_message(run: Run) -> str:
    where = "before its first step" if run.last_step_logged is None else f"after step {run.last_step_logged + 1}"
    total = f" of {run.total_steps}" if run.total_steps is not None else ""
    if run.last_checkpoint_step is None:
        saved = "no checkpoint was saved yet, so a resumed run starts from step 0"
    else:
        saved = f"it resumes from the checkpoint at step {run.last_checkpoint_step}"
    return f"train {run.settings.recipe} interrupted {where}{total}; {saved}. Resume with: {run.resume_hint()}"


def _sigterm_as_interrupt() -> Callable[[], None]:
    """SIGTERM ends a run the way Ctrl-C does: in an event loop it cancels the
    task that opened the run (as asyncio.run does for Ctrl-C), elsewhere it
    raises KeyboardInterrupt. Only the main thread can take signals."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    task = asyncio.current_task(loop) if loop is not None else None
    if loop is not None and task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return lambda: loop.remove_signal_handler(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def resume_command(argv: Sequence[str], log_dir: Path) -> str:
    """The command line that resumes this run: the same words, with
    `--log-dir DIR --if-exists resume` in place of any given."""
    words = list(argv)
    if words[1:3] == ["runs", "resume"]:  # already the resuming command
        return shlex.join([Path(words[0]).name, *words[1:]])
    out: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("--if-exists", "--log-dir", "-o"):
            skip = True
            continue
        if w.startswith(("--if-exists=", "--log-dir=")):
            continue
        out.append(w)
    # options go right after `cookbook train <recipe>`
    at = 3 if len(out) >= 3 and out[1] == "train" else len(out)
    out[at:at] = ["--log-dir", str(log_dir), "--if-exists", "resume"]
    out[0] = Path(out[0]).name if out else "cookbook"
    return shlex.join(out)


def slug(text: str, max_len: int = 40) -> str:
    import re

    s = re.sub(r"[^A-Za-z0-9]+", "-", text.rsplit("/", 1)[-1]).strip("-").lower()
    return s[:max_len] or "run"


def default_log_dir(recipe: str, *parts: str) -> Path:
    """runs/<recipe>-<parts>-<timestamp> under the current directory."""
    import time

    name = "-".join([recipe, *(slug(p) for p in parts if p), time.strftime("%Y%m%d-%H%M%S")])
    return Path("runs") / name
