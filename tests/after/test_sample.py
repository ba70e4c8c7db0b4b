"""`cookbook sample`: each conversation with the sampled reply appended, read
back by train sl; resumable; bad input in one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.completers import SamplingSettings
from cookbook_cli.sampling import sample_file
from cookbook_cli.sources import resolve_source
from cookbook_cli.run.options import RunOptions

SETTINGS = SamplingSettings(max_tokens=4, temperature=1.0, seed=3)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_samples_are_a_conversation_file_train_sl_reads(lora_run, prompts, tmp_path):
    from cookbook_cli.data.builders import ConversationsBuilder
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.recipes.sl import SLConfig, train

    out = tmp_path / "out.jsonl"
    result = cli("sample", "--run", str(lora_run), "--prompts", str(prompts), "--out", str(out), "-n", "2", "--max-tokens", "4", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "Wrote 8 samples" in result.output and "final-000002" in result.output
    written = rows(out)
    assert [(r["sample"]["prompt"], r["sample"]["index"]) for r in written] == [(i, j) for i in range(4) for j in range(2)]
    prompt_rows = rows(prompts)
    for r in written:
        assert r["messages"][:-1] == prompt_rows[r["sample"]["prompt"]]["messages"]
        assert r["messages"][-1]["role"] == "assistant"
        assert r["sample"]["termination"] in ("stop", "eos", "length", "malformed")
        assert 1 <= r["sample"]["tokens"] <= 4 and r["sample"]["logprob"] < 0
    cfg = SLConfig(dataset=ConversationsBuilder(path=str(out), test_size=0), log_dir=str(tmp_path / "sl"), batch_size=4, save_every=0, eval_every=0)
    trained = train(cfg, RunOptions(service=StandInService(latency=0.0), progress=False, on_log=lambda m: None))
    assert trained.total_steps == 2  # 8 conversations in batches of 4


def assert_same_samples(got: list[dict], want: list[dict]) -> None:
    """The same samples: every field equal but the logprob, equal up to the float
    rounding that the decode batch's composition changes (matrix shapes differ
    with the requests decoded beside a prompt's rows: about 1e-6 in float32)."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a["messages"] == b["messages"]
        assert {k: v for k, v in a["sample"].items() if k != "logprob"} == {k: v for k, v in b["sample"].items() if k != "logprob"}
        assert a["sample"]["logprob"] == pytest.approx(b["sample"]["logprob"], rel=1e-5, abs=1e-5)


def test_rerun_samples_only_what_is_missing(lora_run, prompts, tmp_path):
    source = resolve_source(run=lora_run)
    whole = tmp_path / "whole.jsonl"
    sample_file(prompts, whole, source, SETTINGS, 2, progress=False)
    cut = tmp_path / "cut.jsonl"
    lines = whole.read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:4]) + lines[4][:20])  # prompts 0-1 written, a torn line, prompts 2-3 missing
    summary = sample_file(prompts, cut, source, SETTINGS, 2, progress=False)
    assert (summary.already_written, summary.written) == (2, 4)
    assert_same_samples(rows(cut), rows(whole))  # per-prompt seeds: what one uninterrupted call wrote
    cut.write_text("".join(lines[:5]))  # prompt 2 has one of its two samples
    summary = sample_file(prompts, cut, source, SETTINGS, 2, progress=False)
    assert (summary.already_written, summary.written) == (2, 3)
    assert [(r["sample"]["prompt"], r["sample"]["index"]) for r in rows(cut)] == [(i, j) for i in range(4) for j in range(2)]
    before = cut.read_text()
    again = sample_file(prompts, cut, source, SETTINGS, 2, progress=False)
    assert again.written == 0 and cut.read_text() == before
    more = sample_file(prompts, cut, source, SETTINGS, 3, progress=False)
    assert more.written == 4 and [r["sample"]["index"] for r in rows(cut)][-4:] == [2, 2, 2, 2]


def test_one_prompt_at_a_time_resumes_to_the_same_bytes(lora_run, prompts, tmp_path):
    """With concurrency=1 each prompt's samples decode alone, so the batch (and
    its rounding) does not depend on what else was sampled: a resumed file is
    byte for byte the uninterrupted one."""
    source = resolve_source(run=lora_run)
    whole = tmp_path / "whole.jsonl"
    sample_file(prompts, whole, source, SETTINGS, 2, progress=False, concurrency=1)
    cut = tmp_path / "cut.jsonl"
    lines = whole.read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:4]))
    assert sample_file(prompts, cut, source, SETTINGS, 2, progress=False, concurrency=1).written == 4
    assert cut.read_text() == whole.read_text()


def test_a_state_only_checkpoint_and_a_base_model_sample_too(lora_run, prompts, tmp_path):
    out = tmp_path / "a.jsonl"
    assert cli("sample", "--run", str(lora_run), "-c", "step-000001", "-p", str(prompts), "-o", str(out), "--max-tokens", "3").exit_code == 0
    assert len(rows(out)) == 4
    by_path = cli("sample", "-c", str(lora_run / "weights" / "step-000001"), "-p", str(prompts), "-o", str(tmp_path / "b.jsonl"), "--max-tokens", "3")
    assert by_path.exit_code == 0 and "step-000001" in by_path.output
    config = json.loads((lora_run / "config.json").read_text())
    base = cli("sample", "--model", config["model"], "--renderer", "hf_template", "-p", str(prompts), "-o", str(tmp_path / "c.jsonl"), "--max-tokens", "3")
    assert base.exit_code == 0 and "base model" in base.output


def test_bad_input_is_one_line(lora_run, prompts, tmp_path):
    final = tmp_path / "final.jsonl"
    final.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n")
    out = str(tmp_path / "o.jsonl")
    r = cli("sample", "--run", str(lora_run), "-p", str(final), "-o", out)
    assert r.exit_code == 1 and f"{final}:1" in r.output and "ends with an assistant message" in r.output and "--replace-final" in r.output
    r = cli("sample", "--run", str(lora_run), "-p", str(final), "-o", out, "--replace-final", "--max-tokens", "2")
    assert r.exit_code == 0, r.output
    assert [m["role"] for m in rows(tmp_path / "o.jsonl")[0]["messages"]] == ["user", "assistant"]

    r = cli("sample", "--run", str(lora_run), "-p", str(prompts), "-o", out, "--max-tokens", "2")
    assert r.exit_code == 1 and "answers another prompt" in r.output
    r = cli("sample", "--run", str(lora_run), "-p", str(final), "-o", out, "--replace-final", "--max-tokens", "3")
    assert r.exit_code == 1 and "sampling.max_tokens: 2 -> 3" in r.output

    r = cli("sample", "--run", str(lora_run), "--model", "random:tiny:llama3", "-p", str(prompts), "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and "trained base model" in r.output and "random:tiny:llama3" in r.output
    r = cli("sample", "--run", str(lora_run), "-c", "step-00001", "-p", str(prompts), "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and "Did you mean 'step-000001'" in r.output
    r = cli("sample", "-p", str(prompts), "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and "--model" in r.output
    r = cli("sample", "--run", str(tmp_path), "-p", str(prompts), "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and "holds no cookbook run" in r.output
    r = cli("sample", "--run", str(lora_run), "-p", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and "does not exist" in r.output
    r = cli("sample", "--run", str(lora_run), "-p", str(prompts), "-o", str(tmp_path / "x.jsonl"), "-n", "0")
    assert r.exit_code == 1 and "-n must be at least 1" in r.output


def test_a_checkpoint_of_another_run_with_another_base_is_refused(lora_run, tmp_path, prompts):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"engine": "local", "model": "random:tiny:llama3", "renderer": "llama3"}))
    (other / "cookbook-run.json").write_text(json.dumps({"format": "cookbook-run/1", "entries": []}))
    (other / "checkpoints.jsonl").write_text("")
    r = cli("sample", "--run", str(other), "-c", str(lora_run / "weights" / "step-000001"), "-p", str(prompts), "-o", str(tmp_path / "x.jsonl"))
    assert r.exit_code == 1 and "belongs to run" in r.output and "base model" in r.output
