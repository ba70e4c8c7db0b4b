"""Evaluators against scripted sampling clients: graded benchmarks on small
local files, an RL env as a benchmark; the registry and its CLI listing."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.errors import CookbookError, UnknownNameError
from cookbook_cli.evaluation.base import EvalContext, make_evaluator
from cookbook_cli.evaluation.runner import run_examples


@pytest.fixture(scope="session")
def digits_renderer():
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    return get_renderer("role_colon", get_tokenizer(toy_tokenizer_path(digits=True)))


def run(spec, renderer, client):
    name, evaluator = make_evaluator(spec)
    ctx = EvalContext(renderer, client, seed=0)
    records = asyncio.run(run_examples(evaluator, evaluator.examples(ctx), ctx))
    return records, evaluator.summarize(records)


def test_gsm8k_grades_numbers(tmp_path, digits_renderer, scripted_client):
    path = tmp_path / "gsm8k.jsonl"
    rows = [{"question": f"Problem {chr(97 + i)}?", "answer": f"#### {i + 1}"} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = digits_renderer.tokenizer

    def respond(prompt, i):  # sample 0 answers 1 everywhere, sample 1 answers 2: right on problems a and b once each
        return tok.encode(f" so {i + 1}\n\nUser:"), "stop"

    records, metrics = run(f"gsm8k path={path} num_samples=2 pass_k=1,2 temperature=1.0", digits_renderer, scripted_client(respond))
    assert [r["metrics"]["accuracy"] for r in records] == [0.5, 0.5, 0.0, 0.0]
    assert records[0]["prompt"].startswith("Problem a?") and "#### <number>" in records[0]["prompt"]
    assert metrics["accuracy"] == 0.25 and metrics["pass@1"] == 0.25 and metrics["pass@2"] == 0.5


def test_multiple_choice_on_a_local_file(tmp_path, digits_renderer, scripted_client):
    path = tmp_path / "mc.jsonl"
    rows = [
        {"question": "Pick b?", "choices": ["x", "y", "z"], "answer": 1},
        {"question": "Pick a?", "choices": ["x", "y"], "answer": "A"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = digits_renderer.tokenizer
    client = scripted_client(lambda prompt, i: (tok.encode(" A\n\nUser:"), "stop"))  # "A" is in the toy vocabulary
    records, metrics = run(f"multiple_choice path={path}", digits_renderer, client)
    assert [r["answer"] for r in records] == ["B", "A"]
    assert [r["responses"][0]["correct"] for r in records] == [False, True]
    assert metrics["accuracy"] == 0.5
    assert "A. x\nB. y\nC. z" in records[0]["prompt"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "?", "choices": ["x", "y"], "answer": 5}) + "\n")
    with pytest.raises(CookbookError, match="row 0: answer 5"):
        make_evaluator(f"multiple_choice path={bad}")[1].examples(EvalContext(digits_renderer, None))


def _sum_answer(tok, prompt, right):
    a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)\?", tok.decode(prompt))[-1])
    return tok.encode(f" {a + b if right(a) else a + b + 1}\n\nUser:"), "stop"


def test_env_as_a_benchmark(digits_renderer, scripted_client):
    tok = digits_renderer.tokenizer
    client = scripted_client(lambda prompt, i: _sum_answer(tok, prompt, lambda a: i < 2))  # 2 of 4 attempts right
    records, metrics = run("env env=arithmetic env.max_operand=9 num_samples=4 max_groups=6 pass_k=1,2,4", digits_renderer, client)
    assert len(records) == 6 and all(r["id"].startswith("test/") for r in records)
    assert metrics["success"] == 0.5 and metrics["pass@1"] == 0.5
    assert metrics["pass@2"] == pytest.approx(1 - 1 / 6) and metrics["pass@4"] == 1.0
    assert metrics["env/correct"] == 0.5 and metrics["env/format"] == 1.0
    assert metrics["reward"] == pytest.approx(0.5)
    with pytest.raises(CookbookError, match="no test split"):
        run("env env=first_token", digits_renderer, client)
    other = scripted_client(lambda prompt, i: (tok.encode(" b"), "length"))
    first_token = run("env env=first_token split=train max_groups=2 num_samples=2", digits_renderer, other)[1]
    assert first_token["success"] == 0.0 and first_token["env/hit"] == 0.0  # no "correct" metric: reward >= 1 passes


def test_the_shipped_arithmetic_benchmark(digits_renderer, scripted_client):
    tok = digits_renderer.tokenizer
    client = scripted_client(lambda prompt, i: _sum_answer(tok, prompt, lambda a: a % 2 == 0))
    records, metrics = run("arithmetic", digits_renderer, client)
    assert len(records) == 25
    assert metrics["accuracy"] == pytest.approx(15 / 25)  # a in 0, 2, 4
    prompt = client.calls[0][0]
    assert "What is 4 + 3?" in tok.decode(prompt)  # the env's solved example opens each prompt


def test_bad_options_and_unknown_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'arithmetic'"):
        make_evaluator("arithmetc")
    with pytest.raises(CookbookError, match="pass_k=4 needs 1 <= k <= num_samples"):
        make_evaluator("arithmetic pass_k=4")
    with pytest.raises(CookbookError, match="evaluator 'nll'"):
        make_evaluator("nll bogus=1")


def test_evaluators_list_cli():
    out = CliRunner().invoke(app, ["evaluators", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert {"nll", "env", "gsm8k", "multiple_choice", "arithmetic"} <= set(rows)
    assert rows["nll"]["plugin"] == "cookbook-cli"
    assert {o["name"] for o in rows["gsm8k"]["options"]} >= {"path", "num_samples", "pass_k"}


def test_a_plugin_registers_an_evaluator(cookbook_plugin, digits_renderer, scripted_client):
    import chz

    from cookbook_cli import hookimpl
    from cookbook_cli.evaluation import Evaluator, Example
    from cookbook_cli.plugins import registry

    @chz.chz
    class Always(Evaluator):
        value: float = 1.0

        def examples(self, ctx):
            return [Example("a", None), Example("b", None)]

        async def evaluate(self, example, ctx):
            return {"metrics": {"score": self.value}}

    class Plugin:
        @hookimpl
        def register_evaluators(self, register):
            register("always", Always, "a constant score")

    cookbook_plugin(Plugin())
    registry.evaluators.clear()
    try:
        records, metrics = run("always value=0.25", digits_renderer, scripted_client(lambda p, i: ([], "stop")))
        assert metrics == {"score": 0.25} and [r["id"] for r in records] == ["a", "b"]
    finally:
        registry.evaluators.clear()
