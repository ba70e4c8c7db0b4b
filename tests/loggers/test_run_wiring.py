"""Trackers through the run lifecycle: `train sl --log-to` writes the tracker's
files under the run, records the choice in config.json, logs each step once
across a resume, and `--if-exists overwrite` removes the tracker's files with
the run's. A bad tracker name or option fails before anything is written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tracker_helpers import needs
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.config import make_config
from cookbook_cli.engines.standin import StandInService
from cookbook_cli.recipes.sl import SLConfig, train
from cookbook_cli.run.options import RunOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sl"))
from sl_helpers import conv, write_jsonl  # noqa: E402

needs("tensorboard", extra="tensorboard")


def sl(data: Path, log_dir: Path, service: StandInService, max_steps: int, if_exists: str = "fail"):
    cfg = make_config(SLConfig, {"log_dir": str(log_dir)}, [f"dataset.path={data}", "dataset.test_size=0", "batch_size=2",
                                                           f"max_steps={max_steps}", "save_every=2"])
    return train(cfg, RunOptions(if_exists=if_exists, service=service, progress=False, on_log=lambda m: None, log_to=["tensorboard"], logger_options={"tensorboard": {}}))


def test_a_run_logs_to_tensorboard_once_per_step_across_a_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = write_jsonl(tmp_path / "d.jsonl", [conv(f"q{i}", f"a{i}") for i in range(12)])
    log_dir = tmp_path / "run"
    service = StandInService(latency=0.0)
    sl(data, log_dir, service, max_steps=2)
    sl(data, log_dir, service, max_steps=4, if_exists="resume")
    config = json.loads((log_dir / "config.json").read_text())
    assert config["loggers"]["names"] == ["tensorboard"]
    acc = EventAccumulator(str(log_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [0, 1, 2, 3]
    manifest = json.loads((log_dir / "cookbook-run.json").read_text())["entries"]
    assert "tensorboard" in manifest
    sl(data, log_dir, service, max_steps=2, if_exists="overwrite")
    acc = EventAccumulator(str(log_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [0, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--log-to", "wandbb"], "unknown logger 'wandbb'. Did you mean 'wandb'?"),
     (["--log-to", "tensorboard", "logger.tensorboard.colour=red"], "unknown option logger.tensorboard.colour"),
     (["logger.wandb.project=x"], "--log-to does not name 'wandb'")],
)
def test_bad_tracker_choices_fail_before_anything_is_written(tmp_path, args, message):
    result = CliRunner().invoke(app, ["train", "sl", "--log-dir", str(tmp_path / "run"), *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "run").exists()
