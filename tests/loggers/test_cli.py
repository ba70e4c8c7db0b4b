"""`cookbook loggers list`, and that no tracker is imported to start the CLI
or to list and validate loggers."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from cookbook_cli.cli.main import app

runner = CliRunner()
TRACKERS = ("wandb", "tensorboard", "mlflow")


def test_loggers_list_shows_builtins_plugins_and_what_is_installed(recorder):
    import importlib.util

    result = runner.invoke(app, ["loggers", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name in TRACKERS:
        installed = importlib.util.find_spec(name) is not None
        assert rows[name]["plugin"] == "cookbook-cli" and rows[name]["installed"] is installed
        assert rows[name]["status"] == ("ready" if installed else f"needs {name} (pip install 'cookbook-cli[{name}]')")
    assert set(rows["wandb"]["fields"]) == {"project", "entity", "name", "tags", "group", "notes", "mode"}
    assert set(rows["mlflow"]["fields"]) == {"tracking_uri", "experiment", "run_name"}
    assert rows["rec"]["plugin"] == "recorder-plugin" and rows["rec"]["fields"] == {"project": "a name"}
    assert rows["needs_pkg"] == {
        "name": "needs_pkg",
        "installed": False,
        "status": "needs no_such_module_xyz (pip install 'cookbook-cli[nothere]')",
        "plugin": "recorder-plugin",
        "fields": {},
        "description": "needs a package",
    }
    table = runner.invoke(app, ["loggers", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "tensorboard" in table.stdout and "recorder-plugin" in table.stdout


_PROBE = """
import sys
from cookbook_cli.cli.main import main
for argv in ({argvs}):
    try:
        main(argv)
    except SystemExit:
        pass
from cookbook_cli.loggers import validate_logger_names
validate_logger_names(["wandb", "tensorboard", "mlflow"], {{"wandb": {{"mode": "offline"}}}})
print("IMPORTED", sorted(m for m in sys.modules if m.split(".")[0] in {trackers}))
"""


def test_no_tracker_is_imported_to_start_list_or_validate():
    argvs = repr([["--help"], ["loggers", "list"], ["loggers", "list", "--json"]])[1:-1]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argvs=argvs, trackers=set(TRACKERS))], capture_output=True, text=True, check=True
    ).stdout
    assert "loggers" in out  # the group is listed in --help
    assert out.strip().splitlines()[-1] == "IMPORTED []"
