"""The tinker engine against a real Tinker-compatible server (SkyRL's, on the
CPU; see conftest.py), through the CLI as a user runs it: `train sl`, its
resume from a `tinker://` checkpoint, `sample` from the run, and `train rl`.

Runs only with COOKBOOK_TINKER_LOCAL=1 (several minutes: each new batch shape
is compiled by JAX on two cores); skipped otherwise.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 900
OLDER_RESTORE = "restores checkpoints the older way"


def cookbook(local: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`cookbook ARGS` in a fresh interpreter, with the server's key; a
    failure shows the command's output and the server log's tail."""
    env = {**os.environ, "TINKER_API_KEY": local.api_key, "COOKBOOK_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "cookbook_cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=CLI_TIMEOUT_S
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, (
        f"cookbook {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}\n--- server log ---\n{local.log_tail()}"
    )
    return done


def tinker_args(local: Any) -> list[str]:
    return ["--engine", "tinker", "--model", local.model, "--renderer", "llama3", "--lora-rank", "8"]


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_rows(run: Path) -> list[dict[str, Any]]:
    return [r for r in rows(run / "metrics.jsonl") if "loss" in r]


@pytest.fixture(scope="module")
def sl_run(tinker_local: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step `train sl` run on the bundled sample, checkpointed at the end."""
    run = tmp_path_factory.mktemp("sl") / "run"
    cookbook(
        tinker_local, "train", "sl", *tinker_args(tinker_local), "-o", str(run),
        "--max-steps", "2", "-b", "2", "--save-every", "2", "--eval-every", "0",
        f"engine_options.base_url={tinker_local.base_url}",
    )
    return run


def test_sl_trains_and_checkpoints_on_the_service(sl_run: Path) -> None:
    steps = training_rows(sl_run)
    assert [r["step"] for r in steps] == [0, 1]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 and r["loss_tokens"] > 0 for r in steps)
    final = [r for r in rows(sl_run / "metrics.jsonl") if r.get("final")]
    assert final and math.isfinite(final[-1]["test_nll"])
    (ckpt,) = rows(sl_run / "checkpoints.jsonl")
    assert ckpt["step"] == 2 and ckpt["final"]
    assert ckpt["state_path"].startswith("tinker://") and "/weights/" in ckpt["state_path"]
    assert ckpt["sampler_path"].startswith("tinker://")


def test_sl_resumes_from_the_tinker_checkpoint(tinker_local: Any, sl_run: Path) -> None:
    before = rows(sl_run / "checkpoints.jsonl")
    done = cookbook(
        tinker_local, "train", "sl", *tinker_args(tinker_local), "-o", str(sl_run),
        "--max-steps", "4", "-b", "2", "--save-every", "2", "--eval-every", "0", "--if-exists", "resume",
        f"engine_options.base_url={tinker_local.base_url}",
    )
    out = done.stdout + done.stderr
    assert "Resuming from checkpoint final-000002 (step 2 of 4)" in out
    # SkyRL 0.4 lacks the one-request restore: the engine loads the state into
    # a new client of the checkpoint's shape, and says so once.
    assert out.count(OLDER_RESTORE) == 1
    assert [r["step"] for r in training_rows(sl_run)] == [0, 1, 2, 3]  # nothing repeated, nothing lost
    after = rows(sl_run / "checkpoints.jsonl")
    assert after[: len(before)] == before and [r["step"] for r in after[len(before) :]] == [4]
    restored, new = before[-1]["state_path"], after[-1]["state_path"]
    assert new.startswith("tinker://") and new.split("/")[2] != restored.split("/")[2]  # a new model on the service


def test_sample_from_the_trained_run(tinker_local: Any, sl_run: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"messages": [{"role": "user", "content": q}]}) + "\n" for q in ("Say hi.", "What is 2+2?"))
    )
    out = tmp_path / "out.jsonl"
    cookbook(tinker_local, "sample", "--run", str(sl_run), "-p", str(prompts), "-o", str(out), "-n", "2", "--max-tokens", "6", "--seed", "0")
    got = rows(out)
    assert sorted((r["sample"]["prompt"], r["sample"]["index"]) for r in got) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in got:
        assert r["messages"][-1]["role"] == "assistant"
        assert 1 <= r["sample"]["tokens"] <= 6 and r["sample"]["termination"] in ("stop", "eos", "length", "malformed")
        assert math.isfinite(r["sample"]["logprob"]) and r["sample"]["logprob"] < 0


def test_rl_trains_on_an_env(tinker_local: Any, tmp_path: Path) -> None:
    run = tmp_path / "rl"
    cookbook(
        tinker_local, "train", "rl", "--env", "first_token", *tinker_args(tinker_local), "-o", str(run),
        "--max-steps", "2", "--group-size", "2", "--groups-per-batch", "2", "max_tokens=4",
        f"engine_options.base_url={tinker_local.base_url}",
    )
    steps = rows(run / "metrics.jsonl")
    assert [r["step"] for r in steps if "groups/trained" in r] == [0, 1]
    for r in steps:
        assert r["datums"] == 4 and r["tokens/action"] > 0
        # The service's sampler and trainer agree on the sampled tokens' logprobs.
        assert abs(r["optim/kl_sample_train_v1"]) < 1e-3
    (ckpt,) = rows(run / "checkpoints.jsonl")
    assert ckpt["final"] and ckpt["step"] == 2 and ckpt["state_path"].startswith("tinker://")
