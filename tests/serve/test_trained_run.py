"""`cookbook serve --run DIR` in its own process on a run trained for 2 steps
with the CLI: the same tokens as `cookbook sample` for the same seed and
settings, and `cookbook eval --endpoint` scoring it over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

pytest.importorskip("openai")
pytest.importorskip("uvicorn")

KEY = "run-key"


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from cookbook_cli.testing import tiny_tokenizer_path

    run = tmp_path_factory.mktemp("serve") / "run"
    cli("train", "sl", "--model", f"random:tiny:{tiny_tokenizer_path()}", "--renderer", "hf_template", "--max-steps", "2",
        "--batch-size", "4", "--eval-every", "0", "--save-every", "1", "--log-dir", str(run), "dataset.test_size=0")
    return run


@pytest.fixture(scope="module")
def served(trained) -> Iterator[str]:
    """The CLI serving the run on a free port; its URL, read from the line it prints when ready."""
    env = {**os.environ, "COOKBOOK_SERVE_API_KEY": KEY, "COOKBOOK_LOAD_PLUGINS": ""}
    code = "import sys\nfrom cookbook_cli.cli.main import main\nsys.argv = ['cookbook', *sys.argv[1:]]\nmain()\n"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--run", str(trained), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:  # blocks until the server says where it listens (or exits)
            lines.append(line)
            if "OpenAI API at" in line:
                break
        url = next((w for w in "".join(lines).split() if w.startswith("http://") and w.endswith("/v1")), None)
        assert url is not None, "".join(lines)
        assert "renderer hf_template" in "".join(lines) and "final-000002" in "".join(lines)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_same_tokens_as_cookbook_sample(trained, served, tmp_path):
    import openai

    conversation = [{"role": "user", "content": "What is two plus two?"}]
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"messages": conversation}) + "\n")
    out = tmp_path / "o.jsonl"
    cli("sample", "--run", str(trained), "-p", str(prompts), "-o", str(out), "--seed", "7", "--max-tokens", "12", "--temperature", "1", "-n", "2")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    client = openai.OpenAI(base_url=served, api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(model="run", messages=conversation, seed=7, max_tokens=12, temperature=1, n=2)
    assert [c.message.content for c in reply.choices] == [r["messages"][-1]["content"] for r in rows]
    assert reply.usage.completion_tokens == sum(r["sample"]["tokens"] for r in rows)


def test_eval_endpoint_runs_a_benchmark_and_resumes(served, tmp_path):
    out = tmp_path / "results"
    args = ["eval", "--endpoint", served, "--api-key", KEY, "--out", str(out), "arithmetic", "max_examples=3", "max_tokens=4", "num_samples=2", "temperature=1"]
    first = cli(*args)
    assert "run at " in first and "arithmetic (3 examples)" in first and "accuracy=" in first
    result = json.loads((out / "arithmetic" / "result.json").read_text())
    assert result["status"] == "complete" and result["settings"]["model"]["model"] == "run"
    records = [json.loads(line) for line in (out / "arithmetic" / "trajectories.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(len(r["responses"]) == 2 for r in records)
    assert "3 already done" in cli(*args)  # resumed: nothing sampled again
    again = tmp_path / "again"
    cli(*[a if a != str(out) else str(again) for a in args])
    assert (again / "arithmetic" / "trajectories.jsonl").read_text() == (out / "arithmetic" / "trajectories.jsonl").read_text()  # seeds repeat


def test_eval_endpoint_refuses_token_evaluators_and_bad_keys(served, tmp_path):
    for args, expected in [
        (["eval", "--endpoint", served, "--api-key", KEY, "nll"], "needs the model's tokens"),
        (["eval", "--endpoint", served, "--api-key", "nope", "arithmetic", "--out", str(tmp_path / "x")], "HTTP 401"),
        (["eval", "--endpoint", served, "--model", "m", "arithmetic"], "drop --model"),
        (["eval", "--endpoint", "ftp://x", "arithmetic"], "http:// or https://"),
    ]:
        result = CliRunner().invoke(app, args)
        assert result.exit_code != 0 and expected in result.output and "Traceback" not in result.output, result.output
