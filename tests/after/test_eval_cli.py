"""`cookbook eval` on a run's checkpoints: result files, resume by example id,
--all-checkpoints, and bad input in one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nll_equals_the_training_clients_test_nll(lora_run, tmp_path):
    """The nll evaluator (sampling client's compute_logprobs) against a training
    client's forward with cross_entropy on the same checkpoint, as train sl computes test_nll."""
    from cookbook_cli.conversations import load_conversations
    from cookbook_cli.data.builders import sample_conversations_path
    from cookbook_cli.data.datum import datum_from_tokens_weights
    from cookbook_cli.recipes.sl import weighted_nll
    from cookbook_cli.sources import create_service, renderer_for, resolve_source

    # the run held out no rows (test_size=0), so the file is named
    r = cli("eval", "--run", str(lora_run), "--out", str(tmp_path / "res"), "--json", "nll", f"path={sample_conversations_path()}", "max_examples=3")
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output.strip().splitlines()[-1])["results"]["nll"]["metrics"]
    source = resolve_source(run=lora_run)
    renderer = renderer_for(source)
    convs = load_conversations(sample_conversations_path())[:3]
    datums = [datum_from_tokens_weights(*renderer.build_supervised_tokens(c.messages, "all_assistant_messages")) for c in convs]
    service = create_service(source)
    try:
        tc = service.create_training_client_from_state(source.state_path())
        total, weight = weighted_nll(tc.forward(datums, "cross_entropy").result(), datums)
    finally:
        service.close()
    assert metrics["nll"] == pytest.approx(total / weight, rel=1e-4)
    assert metrics["tokens"] == weight and 0 < metrics["bits_per_byte"] < metrics["nll"] * 2


def test_results_resume_by_example_id(lora_run, tmp_path):
    out = tmp_path / "res"
    args = ["eval", "--run", str(lora_run), "-c", "step-000001", "--out", str(out), "arithmetic", "max_examples=6", "max_tokens=3",
            "num_samples=2", "temperature=1.0"]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    folder = out / "arithmetic"
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "complete" and result["examples"] == 6
    assert result["settings"]["model"]["checkpoint"] == "step-000001"
    records = lines(folder / "trajectories.jsonl")
    assert [r["id"] for r in records] == ["add-0-0", "add-0-1", "add-0-2", "add-0-3", "add-0-4", "add-1-0"]
    assert all(len(r["responses"]) == 2 for r in records)
    whole = (folder / "trajectories.jsonl").read_text()
    kept = whole.splitlines(keepends=True)
    (folder / "trajectories.jsonl").write_text("".join(kept[:2]) + kept[2][:15])  # killed while writing the third
    again = cli(*args)
    assert again.exit_code == 0 and "2 already done" in again.output
    assert (folder / "trajectories.jsonl").read_text() == whole  # per-example seeds: the same records
    assert json.loads((folder / "result.json").read_text())["metrics"] == result["metrics"]
    other = cli(*args[:-1], "temperature=0.5")
    assert other.exit_code == 1 and "other settings" in other.output and "temperature" in other.output


def test_all_checkpoints_table_and_plot(lora_run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("COLUMNS", "200")
    png = tmp_path / "curve.png"
    from cookbook_cli.data.builders import sample_conversations_path

    r = cli("eval", "--run", str(lora_run), "--all-checkpoints", "--plot", str(png), "nll", f"path={sample_conversations_path()}", "max_examples=2")
    assert r.exit_code == 0, r.output
    assert "step-000001" in r.output and "final-000002" in r.output and "nll/nll" in r.output
    assert png.stat().st_size > 1000
    assert (lora_run / "eval" / "step-000001" / "nll" / "result.json").is_file()
    assert (lora_run / "eval" / "final-000002" / "nll" / "result.json").is_file()
    assert "eval" in json.loads((lora_run / "cookbook-run.json").read_text())["entries"]


def test_bad_input(lora_run, tmp_path):
    r = cli("eval", "--run", str(lora_run), "arithmetc")
    assert r.exit_code == 1 and "unknown evaluator 'arithmetc'" in r.output and "Did you mean 'arithmetic'" in r.output
    r = cli("eval", "--run", str(lora_run))
    assert r.exit_code == 1 and "no evaluators in its config" in r.output
    r = cli("eval", "--run", str(lora_run), "num_samples=2")
    assert r.exit_code == 1 and "before any evaluator name" in r.output
    r = cli("eval", "--run", str(lora_run), "arithmetic", "pass_k=3")
    assert r.exit_code == 1 and "pass_k=3" in r.output
    r = cli("eval", "--run", str(lora_run), "--plot", str(tmp_path / "p.png"), "nll")
    assert r.exit_code == 1 and "--all-checkpoints" in r.output
    r = cli("eval", "--model", "random:tiny:llama3", "--run", str(lora_run), "nll")
    assert r.exit_code == 1 and "trained base model" in r.output
