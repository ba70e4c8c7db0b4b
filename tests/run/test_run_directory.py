"""The run directory never loses or mixes data: overwrite removes only what
cookbook wrote, a folder of someone else's files is refused, one run at a time
holds the lock, bad checkpoint records are reported, a validation error leaves
nothing behind. Driven through the library with the engine stand-in (fast);
the local-engine cases are in test_resume.py."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sl_helpers import REPO, cli_env, conv, run_cli, write_jsonl
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.engines.standin import StandInService
from cookbook_cli.errors import CookbookError
from cookbook_cli.recipes.sl import SLConfig, train
from cookbook_cli.run.lock import is_locked
from cookbook_cli.run.options import RunOptions

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", [conv(f"question {i}?", f"answer {i}.") for i in range(12)])


def config(data: Path, log_dir: Path, **kw) -> SLConfig:
    from cookbook_cli.config import make_config

    fields = {"dataset.path": data, "dataset.test_size": 0, "batch_size": 2, "max_steps": 4, "save_every": 2, **kw}  # a word once: twice is refused
    return make_config(SLConfig, {"log_dir": str(log_dir)}, [f"{k}={v}" for k, v in fields.items()])


def quiet(_: str) -> None:
    pass


def run_once(data: Path, log_dir: Path, if_exists: str = "fail", service: StandInService | None = None, **kw):
    service = service or StandInService(latency=0.0)
    return train(config(data, log_dir, **kw), RunOptions(if_exists=if_exists, service=service, progress=False, on_log=quiet))


def one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_a_run_lists_what_it_wrote_in_its_manifest(tmp_path, data):
    run_once(data, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "cookbook-run.json").read_text())
    assert {"config.json", "metrics.jsonl", "checkpoints.jsonl", "cookbook-run.json", ".lock"} <= set(manifest["entries"])


def test_overwrite_removes_only_what_cookbook_wrote(tmp_path, data):
    log_dir = tmp_path / "run"
    run_once(data, log_dir)
    (log_dir / "notes.txt").write_text("mine")
    (log_dir / "my_results").mkdir()
    (log_dir / "my_results" / "table.csv").write_text("a,b")
    run_once(data, log_dir, if_exists="overwrite", max_steps=2)
    assert (log_dir / "notes.txt").read_text() == "mine" and (log_dir / "my_results" / "table.csv").is_file()
    assert [r["step"] for r in map(json.loads, (log_dir / "metrics.jsonl").read_text().splitlines())] == [0, 1]


def test_overwrite_refuses_a_folder_that_holds_no_run(tmp_path, data):
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"my": "settings"}')
    for mode in ("overwrite", "resume", "fail"):
        with pytest.raises(CookbookError, match="holds files cookbook did not write .config.json."):
            run_once(data, foreign, if_exists=mode)
    assert (foreign / "config.json").read_text() == '{"my": "settings"}' and sorted(p.name for p in foreign.iterdir()) == ["config.json"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "paper.tex").write_text("x")
    with pytest.raises(CookbookError, match="does not hold a cookbook run, so --if-exists overwrite will not empty it"):
        run_once(data, other, if_exists="overwrite")
    assert (other / "paper.tex").exists()


@pytest.mark.parametrize("log_dir", ["/", "~", ""])
def test_log_dirs_that_can_never_hold_a_run_are_refused(data, log_dir):
    line = one_line_error(["train", "sl", "--dataset", str(data), "--log-dir", log_dir, "--if-exists", "overwrite"])
    assert ("--log-dir is empty" if log_dir == "" else "refusing to use") in line


def test_the_current_folder_of_a_project_is_refused_for_overwrite(tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("my project")
    line = one_line_error(["train", "sl", "--dataset", str(data), "--log-dir", ".", "--if-exists", "overwrite"])
    assert "does not hold a cookbook run" in line and (tmp_path / "README.md").exists()


def test_a_second_run_on_a_locked_directory_fails_at_once_naming_the_holder(tmp_path, data):
    log_dir = tmp_path / "run"
    code = (
        "import sys, time\n"
        "from cookbook_cli.engines.standin import StandInService\n"
        "from cookbook_cli.config import make_config\n"
        "from cookbook_cli.recipes.sl import SLConfig, train\n"
        "from cookbook_cli.run.options import RunOptions\n"
        f"cfg = make_config(SLConfig, {{'log_dir': {str(log_dir)!r}}}, ['dataset.path={data}', 'dataset.test_size=0', 'batch_size=2', 'max_steps=4', 'save_every=2'])\n"
        "train(cfg, RunOptions(service=StandInService(latency=1.0, mode='serial'), progress=False))\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not is_locked(log_dir / ".lock"):
            assert holder.poll() is None, holder.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        line = one_line_error(["train", "sl", "--dataset", str(data), "--log-dir", str(log_dir), "--if-exists", "resume",
                               "--batch-size", "2", "--max-steps", "4", "--save-every", "2", "dataset.test_size=0"])
        assert "is in use by another run (pid " + str(holder.pid) + ")" in line
        assert time.monotonic() - t0 < 30  # at once: it never waits for the lock
    finally:
        out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    steps = [json.loads(x)["step"] for x in (log_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]  # the refused run wrote nothing: every step once
    assert not is_locked(log_dir / ".lock")


def test_a_killed_holder_never_blocks_the_next_run(tmp_path, data):
    log_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"os.makedirs({str(log_dir)!r})\nfd = os.open({str(log_dir / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    assert is_locked(log_dir / ".lock")
    proc.kill()
    proc.wait()
    assert not is_locked(log_dir / ".lock")
    run_once(data, log_dir)  # the lock file left behind is no obstacle


@pytest.mark.parametrize(
    ("row", "problem"),
    [('"just a string"', "holds a JSON str, not an object"), ('{"name": "step-000002"}', "not a checkpoint record (no step)"),
     ('{"step": "two", "state_path": "x"}', "step 'two' is not a count"), ("{not json", "is not valid JSON")],
)
def test_a_damaged_checkpoints_file_is_reported_never_restarted_from_zero(tmp_path, data, row, problem):
    log_dir = tmp_path / "run"
    run_once(data, log_dir, max_steps=2)
    path = log_dir / "checkpoints.jsonl"
    path.write_text(row + "\n" + path.read_text())
    with pytest.raises(CookbookError, match=f"checkpoints.jsonl:1 .*{re.escape(problem)}"):
        run_once(data, log_dir, if_exists="resume", max_steps=4)
    assert [json.loads(x)["step"] for x in (log_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1]


def test_a_torn_last_line_of_checkpoints_is_dropped(tmp_path, data):
    log_dir = tmp_path / "run"
    service = StandInService(latency=0.0)  # it keeps the saved states in memory
    run_once(data, log_dir, max_steps=2, service=service)
    with (log_dir / "checkpoints.jsonl").open("a") as f:
        f.write('{"step": 4, "epo')  # a killed append
    result = run_once(data, log_dir, if_exists="resume", max_steps=4, service=service)
    assert result.start_step == 2


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["min_lr_ratio=2"], "min_lr_ratio must be between 0 and 1, got 2"),
        (["adam.beta1=1.5"], "adam.beta1 must be in [0, 1), got 1.5"),
        (["--lr", "nan"], "learning_rate must be a finite number, got nan"),
        (["--lr", "inf"], "learning_rate must be a finite number, got inf"),
        (["adam.eps=-1"], "adam.eps must be > 0"),
        (["warmup_steps=100"], "warmup_steps=100 is not less than the run's 1 steps"),
    ],
)
def test_validation_errors_fail_fast_and_leave_no_directory(tmp_path, data, words, message):
    log_dir = tmp_path / "run"
    options = [w for w in words if w.startswith("-") or words.index(w) > 0 and words[words.index(w) - 1].startswith("-")]
    config_words = [w for w in words if w not in options]
    line = one_line_error(["train", "sl", "--dataset", str(data), "--log-dir", str(log_dir), *options, *config_words])
    assert message in line, line
    assert not log_dir.exists()
    ok = runner.invoke(app, ["train", "sl", "--dataset", str(data), "--log-dir", str(log_dir), "--dry-run"])
    assert ok.exit_code == 0, ok.output


def test_tools_the_renderer_cannot_write_fail_before_a_model_loads(tmp_path):
    tools = [{"type": "function", "function": {"name": "get_time", "description": "now", "parameters": {"type": "object", "properties": {}}}}]
    rows = [{**conv(f"q{i}", f"a{i}"), "tools": tools} for i in range(10)]
    data = write_jsonl(tmp_path / "tools.jsonl", rows)
    t0 = time.monotonic()
    proc = run_cli(["train", "sl", "--renderer", "llama3", "--dataset", str(data), "--log-dir", str(tmp_path / "run")], timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "tools" in proc.stderr and "llama3" in proc.stderr, proc.stderr
    assert "torch" not in sys.modules or True
    assert not (tmp_path / "run").exists()
    assert time.monotonic() - t0 < 120


def test_a_missing_api_key_leaves_no_run_behind(tmp_path, data, monkeypatch):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    log_dir = tmp_path / "run"
    line = one_line_error(["train", "sl", "--engine", "tinker", "--dataset", str(data), "--log-dir", str(log_dir)])
    assert "TINKER_API_KEY" in line
    assert not log_dir.exists()


def test_an_unknown_option_after_config_words_is_called_unknown(data):
    line = one_line_error(["train", "sl", "--dataset", str(data), "batch_size=2", "--max-step", "3"])
    assert "no such option: --max-step" in line and "Did you mean --max-steps?" in line


def test_rl_group_size_one_and_negative_temperature_are_refused():
    assert "group_size=1 gives every episode an advantage of 0" in one_line_error(["train", "rl", "--env", "arithmetic", "--group-size", "1"])
    assert "temperature must be >= 0" in one_line_error(["train", "rl", "--env", "arithmetic", "temperature=-0.5"])


def test_a_run_that_records_nothing_is_removed_again(tmp_path, data):
    log_dir = tmp_path / "run"

    class Broken(StandInService):
        def create_lora_training_client(self, *a, **k):
            raise CookbookError("the model failed to load")

    with pytest.raises(CookbookError, match="failed to load"):
        train(config(data, log_dir), RunOptions(service=Broken(latency=0.0), progress=False, on_log=quiet))
    assert not log_dir.exists()
    keep = tmp_path / "kept"
    keep.mkdir()
    (keep / "mine.txt").write_text("x")
    with pytest.raises(CookbookError, match="failed to load"):
        train(config(data, keep), RunOptions(service=Broken(latency=0.0), progress=False, on_log=quiet))
    assert sorted(p.name for p in keep.iterdir()) == ["mine.txt"]
