"""Weights & Biases in offline mode: the run folder under <run>/wandb holds the
config (secrets redacted) and every step; a resumed run continues the same W&B
run and gives it each step once; a tracker that cannot log in is one warning."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from tracker_helpers import needs

from cookbook_cli.loggers import open_loggers, read_state

needs("wandb", extra="wandb")

SECRET = "sk-test-0123456789abcdef"
BLOCK = 32768  # W&B's transaction log: LevelDB-style records in 32 KiB blocks after a 7-byte header


def read_wandb_records(path: Path) -> list:
    """Every record of an offline run's `.wandb` file, parsed."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, chunk = [], 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # block trailer too small for a header: padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0:  # zero padding at the end of a block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        chunk += data[pos : pos + length]
        pos += length
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def offline_runs(run_dir: Path) -> list[Path]:
    """The offline runs' transaction logs, once W&B's writer (a separate process,
    which may still be flushing when `finish()` returns) has finished each."""
    import time

    paths = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    deadline = time.monotonic() + 30
    for path in paths:
        while not any(r.WhichOneof("record_type") == "exit" for r in read_wandb_records(path)):
            assert time.monotonic() < deadline, f"W&B never finished writing {path}"
            time.sleep(0.1)
    return paths


def history(records: list) -> dict[int, dict]:
    rows = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            step = r.history.step.num
            assert step not in rows, f"step {step} logged twice"
            rows[step] = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
    return rows


def config_of(records: list) -> dict:
    config: dict = {}
    for r in records:
        kind = r.WhichOneof("record_type")
        updates = r.run.config.update if kind == "run" else r.config.update if kind == "config" else []
        for u in updates:
            config[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    return config


def _log_steps(loggers, steps):
    for step in steps:
        loggers.log_metrics(step, {"loss": 1.0 / (step + 1), "lr": 1e-4, "final": False, "note": "text", "none": None})


def test_offline_run_holds_config_and_every_step(tracker_env, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["cookbook", "train", "sl", f"engine.api_key={SECRET}"])  # as if typed
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "t.html").write_text("<p>a transcript</p>")
    config = {"learning_rate": 1e-4, "engine": {"name": "local", "api_key": SECRET}, "model": "tiny"}
    warnings: list[str] = []
    loggers = open_loggers(["wandb"], {"wandb": {"project": "cb-test", "tags": "a, b"}}, run_dir, config, False, warnings.append)
    _log_steps(loggers, range(4))
    loggers.log_metrics(4, {"loss": math.nan})
    loggers.log_html("transcripts", "t.html", 4)
    loggers.log_checkpoint({"step": 4, "name": "step-000004", "state_path": "ckpt/step-000004"})
    loggers.close()
    assert warnings == []
    assert loggers.written_paths() == [Path("trackers.json"), Path("wandb")]

    [path] = offline_runs(run_dir)
    run_id = read_state(run_dir)["wandb"]["state"]["run_id"]
    assert path.name == f"run-{run_id}.wandb"
    records = read_wandb_records(path)
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert (run.run_id, run.project, run.display_name, list(run.tags)) == (run_id, "cb-test", "run", ["a", "b"])
    config_seen = config_of(records)
    assert config_seen["learning_rate"] == 1e-4 and config_seen["engine"] == {"name": "local", "api_key": "***"}
    rows = history(records)
    assert sorted(rows) == [0, 1, 2, 3, 4]
    assert [rows[s]["loss"] for s in range(4)] == [1.0, 0.5, 1.0 / 3, 0.25]
    assert rows[0]["final"] == 0 and "note" not in rows[0] and "none" not in rows[0]
    assert math.isnan(float(rows[4]["loss"])) and rows[4]["transcripts/_type"] == "html-file"
    summary = [json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "summary" for u in r.summary.update if u.key == "checkpoint"]
    assert summary[-1]["name"] == "step-000004"
    leaked = [p for p in (run_dir / "wandb").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == [], "the secret reached W&B's files"


def test_resume_continues_the_same_run_and_logs_each_step_once(tracker_env, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = open_loggers(["wandb"], {}, run_dir, {"steps": 6}, False, print)
    _log_steps(first, range(6))
    first.close(RuntimeError("killed after step 5; the last checkpoint is at step 3"))
    resumed = open_loggers(["wandb"], {}, run_dir, {"steps": 8}, True, print)
    _log_steps(resumed, range(3, 8))  # the lifecycle restarts at the checkpoint's step
    resumed.close()

    paths = offline_runs(run_dir)
    assert len(paths) == 2 and len({p.name for p in paths}) == 1  # two offline sessions of one W&B run
    steps = [sorted(history(read_wandb_records(p))) for p in paths]
    assert steps == [[0, 1, 2, 3, 4, 5], [6, 7]]
    assert config_of(read_wandb_records(paths[1]))["steps"] == 8  # a changed setting is accepted on resume


def test_not_logged_in_is_one_warning_and_the_others_go_on(tracker_env, tmp_path, monkeypatch):
    needs("tensorboard", extra="tensorboard")
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tracker_env))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    warnings: list[str] = []
    loggers = open_loggers(["wandb", "tensorboard"], {}, run_dir, {}, False, warnings.append)
    loggers.log_metrics(0, {"loss": 1.0})
    assert loggers.names == ["tensorboard"] and len(warnings) == 1, warnings
    loggers.close()
    assert warnings[0].startswith("logger 'wandb' failed to open and was dropped; the run continues") and "\n" not in warnings[0]
    assert "tensorboard" in read_state(run_dir) and "wandb" not in read_state(run_dir)
