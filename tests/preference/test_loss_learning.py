"""Each preference loss learns the shipped sample: `cookbook train dpo
--loss-type X` (and `train kto` on the unpaired sample) for 4 steps on the tiny
random Llama, and the held-out accuracy of the loss's own metric rises from
the step-0 evaluation (0 for the reference losses: the policy is its
reference, so every log-ratio is 0) to >= 0.9 (KTO's stricter per-row
accuracy, a log-ratio on the right side of the batch's KL estimate: >= 0.75).
Reference-free losses run no reference pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

pytest.importorskip("torch")

ARGS = ["--max-steps", "4", "--batch-size", "8", "--eval-every", "4", "--save-every", "0", "dataset.test_size=16"]


@pytest.mark.parametrize(
    "recipe, loss_type, at_least",
    [("dpo", "ipo", 0.9), ("dpo", "hinge", 0.9), ("dpo", "robust", 0.9), ("dpo", "simpo", 0.9), ("dpo", "orpo", 0.9), ("kto", "kto", 0.75)],
)
def test_each_loss_learns_the_sample(recipe: str, loss_type: str, at_least: float, tmp_path: Path) -> None:
    from cookbook_cli.preference.losses import BUILTIN_PREFERENCE_LOSSES

    loss = BUILTIN_PREFERENCE_LOSSES[loss_type]
    log_dir = tmp_path / loss_type
    result = CliRunner().invoke(app, ["train", recipe, "--loss-type", loss_type, "--log-dir", str(log_dir), *ARGS])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "test/accuracy" in r]
    first, final = evals[0]["test/accuracy"], evals[-1]["test/accuracy"]
    assert final >= at_least and final > first, (first, final, rows[-1])
    steps = [r for r in rows if loss.metric in r]
    assert len(steps) == 4 and steps[-1][loss.metric] < steps[0][loss.metric], steps
    assert (log_dir / "reference" / "sums.json").exists() is loss.needs_reference
    assert ("Reference logprobs:" in result.output) is loss.needs_reference
    if loss.needs_reference:
        assert first == 0.0
