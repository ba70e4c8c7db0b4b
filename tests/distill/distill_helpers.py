"""Helpers of the distillation tests: prompt files and a recorded teacher run."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def prompt(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}



WORDS = ["hello there", "a cat sat", "ask us", "sun and sea", "a quiet lane", "ask a question", "see us soon", "nice"]


def fake_teacher_run(folder: Path, model: str, renderer: str, engine: str = "local") -> Path:
    """A run directory as a finished `train sl` leaves it (its weights are never loaded by these tests)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"engine": engine, "model": model, "renderer": renderer}))
    (folder / "sampler_weights" / "final-000004").mkdir(parents=True)
    record = {"step": 4, "epoch": 0, "batch": 4, "name": "final-000004", "final": True,
              "state_path": "weights/final-000004", "sampler_path": "sampler_weights/final-000004", "files": {}}
    (folder / "checkpoints.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
    return folder
