"""TensorBoard event files under `<run>/tensorboard/`, written with the
`tensorboard` package alone (no TensorFlow, no torch).

Scalars are written as each step arrives and flushed at once, so a killed run
loses nothing it logged; a resumed run adds a new event file beside the old
ones, which TensorBoard reads as one run. The config goes to the Text tab;
checkpoints too. TensorBoard cannot show HTML: transcripts stay in the run
directory. Images: PNG.

View: `tensorboard --logdir <run>/tensorboard` (or the parent of many runs).
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookbook_cli.loggers.base import Logger, LoggerContext, scalar_metrics

_PNG = b"\x89PNG\r\n\x1a\n"


class TensorBoardLogger(Logger):
    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.writer = EventFileWriter(str(logdir), flush_secs=10)

    def _write(self, step: int, summary: Any) -> None:
        from tensorboard.compat.proto import event_pb2

        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))
        self.writer.flush()

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        from tensorboard.compat.proto import summary_pb2

        values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in scalar_metrics(metrics).items()]
        if values:  # float32 keeps NaN and inf; TensorBoard draws them at the edge of the chart
            self._write(step, summary_pb2.Summary(value=values))

    def log_text(self, tag: str, text: str, step: int) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb

        self._write(step, text_pb(tag, text))

    def log_checkpoint(self, record: Mapping[str, Any]) -> None:
        where = record.get("state_path", "")
        self.log_text("checkpoints", f"`{record.get('name', '')}` saved at step {record.get('step')}: `{where}`", int(record.get("step", 0)))

    def log_image(self, name: str, path: Path, step: int) -> None:
        from tensorboard.compat.proto import summary_pb2

        data = path.read_bytes()
        if data[:8] != _PNG:
            return  # only PNG's size can be read without an image library
        width, height = struct.unpack(">II", data[16:24])
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=data)
        self._write(step, summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, image=image)]))

    def close(self, status: str = "finished") -> None:
        self.writer.close()


def _config_markdown(config: Mapping[str, Any]) -> str:
    # Indented by four spaces: a code block in the Text tab's Markdown.
    return "\n".join("    " + line for line in json.dumps(config, indent=2, default=str).splitlines())


def open_tensorboard(ctx: LoggerContext) -> TensorBoardLogger:
    logger = TensorBoardLogger(ctx.claim("tensorboard"))
    digest = hashlib.sha256(json.dumps(ctx.config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if ctx.state.get("config_sha") != digest:  # a resumed run writes its config again only if it changed
        logger.log_text("config", _config_markdown(ctx.config), 0)
        ctx.state["config_sha"] = digest
    return logger
