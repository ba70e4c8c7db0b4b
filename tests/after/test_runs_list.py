"""`cookbook runs list`: recipe, model, steps, last loss/reward, state and newest
checkpoint of each run under a folder."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.data.builders import ConversationsBuilder
from cookbook_cli.engines.standin import StandInService
from cookbook_cli.recipes.sl import SLConfig, train
from cookbook_cli.run.listing import list_runs
from cookbook_cli.run.lock import RunLock
from cookbook_cli.run.options import RunOptions


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sl_run(tmp_path: Path, log_dir: Path, **kw) -> Path:
    cfg = SLConfig(dataset=ConversationsBuilder(path=str(_data(tmp_path)), test_size=2), log_dir=str(log_dir),
                   batch_size=2, eval_every=0, save_every=2, **kw)
    train(cfg, RunOptions(service=StandInService(latency=0.0), progress=False, on_log=lambda m: None))
    return log_dir


def _by_name(rows):
    return {Path(r.path).name: r for r in rows}


def test_states_steps_and_checkpoints(tmp_path):
    runs = tmp_path / "runs"
    _sl_run(tmp_path, runs / "done")  # 5 steps: 10 training conversations in batches of 2
    resumable = _sl_run(tmp_path, runs / "group" / "cut", max_steps=5)
    lines = (resumable / "checkpoints.jsonl").read_text().splitlines()
    (resumable / "checkpoints.jsonl").write_text(lines[0] + "\n")  # as if killed after the first checkpoint
    running = _sl_run(tmp_path, runs / "live", max_steps=3)
    (runs / "not-a-run").mkdir()
    (runs / "not-a-run" / "notes.txt").write_text("mine")

    lock = RunLock(running / ".lock")
    lock.acquire()
    try:
        rows = _by_name(list_runs(runs))
    finally:
        lock.release()
    assert set(rows) == {"done", "cut", "live"}
    done = rows["done"]
    assert (done.recipe, done.state, done.steps_done, done.total_steps) == ("sl", "finished", 5, 5)
    assert done.model is not None and done.last_loss is not None and done.last_reward is None
    assert (done.checkpoint, done.checkpoint_step) == ("final-000005", 5)
    cut = rows["cut"]
    assert (cut.state, cut.checkpoint, cut.checkpoint_step) == ("resumable", "step-000002", 2)
    assert rows["live"].state == "running"
    assert _by_name(list_runs(runs))["live"].state == "finished"  # the lock is released


def test_cli_table_json_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _sl_run(tmp_path, tmp_path / "runs" / "a", max_steps=2)
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(app, ["runs", "list"])
    assert out.exit_code == 0, out.output
    assert "runs/a" in out.output and "finished" in out.output and "2/2" in out.output and "final-000002" in out.output
    rows = json.loads(runner.invoke(app, ["runs", "list", "--json"]).output)
    assert [r["state"] for r in rows] == ["finished"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No runs under" in runner.invoke(app, ["runs", "list", str(empty)]).output
    bad = runner.invoke(app, ["runs", "list", str(tmp_path / "missing")])
    assert bad.exit_code == 1 and "does not exist" in bad.output and "Traceback" not in bad.output


def test_a_damaged_run_is_a_row_not_a_crash(tmp_path):
    run = _sl_run(tmp_path, tmp_path / "runs" / "broken", max_steps=2)
    (run / "checkpoints.jsonl").write_text("not json\n")
    (row,) = list_runs(tmp_path / "runs")
    assert row.state == "damaged" and "checkpoints.jsonl:1" in row.problem
