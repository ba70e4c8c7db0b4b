"""Bad input around runs, through the CLI: each case one line, no traceback,
the culprit named, and nothing left that blocks the corrected command.

| case | command |
| --- | --- |
| metrics.jsonl with a row that is not an object | runs show |
| metrics.jsonl with a line that is not JSON | runs show |
| an immutable (unwritable) log directory | train sl |
| --init-from a checkpoint whose weights are truncated | train dpo |
| --init-from a path that does not exist | train dpo |
| a batch whose every example has nothing to train | train sl (a warning row, the run goes on) |
| a misspelt engine_options.X | train sl |
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.run.options import RunOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sl"))
from sl_helpers import conv, run_cli, write_jsonl  # noqa: E402

runner = CliRunner()


def one_line(args: list[str]) -> str:
    result = runner.invoke(app, args)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def fake_run(path: Path, metrics: str) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"engine": "local", "model": "m"}))
    (path / "cookbook-run.json").write_text(json.dumps({"format": "cookbook-run/1", "entries": ["config.json", "metrics.jsonl"]}))
    (path / "metrics.jsonl").write_text(metrics)
    return path


@pytest.mark.parametrize(
    ("metrics", "message"),
    [('{"step": 0, "loss": 1.0}\n[1, 2]\n', "metrics.jsonl:2 holds a JSON list, not an object"),
     ('{"step": 0, "loss": 1.0}\n{oops\n{"step": 1}\n', "metrics.jsonl:2 is not valid JSON")],
)
def test_runs_show_names_the_bad_metrics_line(tmp_path, metrics, message):
    assert message in one_line(["runs", "show", str(fake_run(tmp_path / "run", metrics))])


def test_an_unwritable_log_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        data = write_jsonl(tmp_path / "d.jsonl", [conv(f"q{i}", f"a{i}") for i in range(10)])
        line = one_line(["train", "sl", "--dataset", str(data), "--log-dir", str(locked)])
        assert "is not writable" in line and str(locked) in line
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert list(locked.iterdir()) == []


def test_init_from_a_damaged_or_missing_checkpoint(tmp_path):
    pytest.importorskip("torch")
    sft = tmp_path / "sft"
    proc = run_cli(["train", "sl", "--max-steps", "1", "--batch-size", "2", "--log-dir", str(sft), "dataset.test_size=0"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record,) = [json.loads(x) for x in (sft / "checkpoints.jsonl").read_text().splitlines()]
    weights = sft / record["state_path"] / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    run = tmp_path / "dpo"
    proc = run_cli(["train", "dpo", "--init-from", str(sft), "--max-steps", "1", "--log-dir", str(run), "dataset.test_size=8"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "weights.safetensors" in proc.stderr and "is damaged" in proc.stderr
    assert not run.exists()
    line = one_line(["train", "dpo", "--init-from", str(tmp_path / "nope"), "--log-dir", str(run)])
    assert "does not exist" in line and not run.exists()


def test_a_batch_with_nothing_to_train_is_a_warning_row(tmp_path):
    from cookbook_cli.config import make_config
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.recipes.sl import SLConfig, train

    # one conversation trains something; the others' assistant turns lie past max_length
    long_user = "word " * 200
    rows = [conv("hi", "hello")] + [conv(long_user, "x") for _ in range(7)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    said: list[str] = []
    cfg = make_config(SLConfig, {"log_dir": str(tmp_path / "run")}, [f"dataset.path={data}", "dataset.test_size=0",
                                                                     "batch_size=1", "max_length=32", "max_steps=8"])
    result = train(cfg, RunOptions(service=StandInService(latency=0.0), progress=False, on_log=said.append))
    empty = [r for r in result.metrics if r.get("no_update")]
    assert len(empty) == 7 and all(r["skipped"] == 1 for r in empty)
    assert result.last_loss is not None


def test_a_misspelt_engine_option_is_one_line(tmp_path):
    line = one_line(["train", "sl", "--max-steps", "1", "--log-dir", str(tmp_path / "run"), "engine_options.devise=cpu"])
    assert "engine 'local' has no option 'devise'" in line
    assert not (tmp_path / "run").exists()
