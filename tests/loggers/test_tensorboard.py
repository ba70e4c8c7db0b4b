"""TensorBoard: the event files under <run>/tensorboard, read back with
TensorBoard's own reader, hold every step's scalars (once, across a resume),
the config and the checkpoints."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import pytest

from tracker_helpers import needs

from cookbook_cli.loggers import open_loggers

needs("tensorboard", extra="tensorboard")


def accumulate(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    return acc


def scalars(acc, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))  # grey, one byte a pixel
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_event_files_hold_every_step(tmp_path):
    (tmp_path / "plot.png").write_bytes(_png(3, 2))
    config = {"lr": 0.001, "engine": {"api_key": "sk-secret-value-1234"}}
    warnings: list[str] = []
    loggers = open_loggers(["tensorboard"], {}, tmp_path, config, False, warnings.append)
    for step in range(5):
        loggers.log_metrics(step, {"loss": 1.0 / (step + 1), "env/reward/mean": step * 0.5, "no_update": True, "tag": "x"})
    loggers.log_metrics(5, {"loss": math.nan, "grad_norm": math.inf})
    loggers.log_checkpoint({"step": 5, "name": "step-000005", "state_path": "ckpt/step-000005"})
    loggers.log_image("plot", "plot.png", 5)
    loggers.close()
    assert warnings == []
    assert loggers.written_paths() == [Path("trackers.json"), Path("tensorboard")]

    acc = accumulate(tmp_path / "tensorboard")
    assert scalars(acc, "loss")[:5] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(5)]
    assert math.isnan(scalars(acc, "loss")[5][1]) and scalars(acc, "grad_norm") == [(5, math.inf)]
    assert scalars(acc, "env/reward/mean") == [(s, s * 0.5) for s in range(5)]
    assert scalars(acc, "no_update") == [(s, 1.0) for s in range(5)]
    assert "tag" not in acc.Tags()["scalars"]
    texts = {tag: [t.tensor_proto.string_val[0].decode() for t in acc.Tensors(tag)] for tag in ("config", "checkpoints")}
    assert '"api_key": "***"' in texts["config"][0] and "sk-secret" not in texts["config"][0]
    assert "step-000005" in texts["checkpoints"][0]
    [image] = acc.Images("plot")
    assert (image.step, image.width, image.height) == (5, 3, 2)


def test_resume_adds_a_file_and_each_step_appears_once(tmp_path):
    first = open_loggers(["tensorboard"], {}, tmp_path, {"steps": 6}, False, print)
    for step in range(6):
        first.log_metrics(step, {"loss": float(step)})
    # killed without close: every step was flushed as it came
    resumed = open_loggers(["tensorboard"], {}, tmp_path, {"steps": 6}, True, print)
    for step in range(3, 9):
        resumed.log_metrics(step, {"loss": float(step)})
    resumed.close()
    first.close()
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    acc = accumulate(tmp_path / "tensorboard")
    assert scalars(acc, "loss") == [(s, float(s)) for s in range(9)]
    assert len(acc.Tensors("config")) == 1  # the config did not change: written once
