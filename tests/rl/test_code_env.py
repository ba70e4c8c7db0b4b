"""The `code` env: the grader (in the sandbox), the problems' shapes, and the env's reward."""

from __future__ import annotations

import asyncio
import json

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.code_grader import extract_code, grade
from cookbook_cli.rl.code_problems import load_problems
from cookbook_cli.sandbox import SandboxLimits

TESTS = ["assert double(2) == 4", "assert double(0) == 0", "assert double(-3) == -6"]


@pytest.fixture(autouse=True)
def _bwrap(bwrap_backend):
    """The grader runs on the bwrap path (CI: a failure when bwrap is missing)."""


def test_a_correct_solution_scores_1():
    g = grade("def double(x):\n    return 2 * x", TESTS)
    assert (g.passed, g.total, g.fraction, g.limit) == (3, 3, 1.0, None)


def test_a_wrong_solution_scores_partially_or_0():
    assert grade("def double(x):\n    return x * x", TESTS).passed == 2  # right at 2 and 0, wrong at -3
    assert grade("def double(x):\n    return x + 1", TESTS).fraction == 0.0
    assert grade("this is not python", TESTS).fraction == 0.0


def test_a_hanging_solution_scores_0_with_the_timeout_named():
    g = grade("def double(x):\n    while True:\n        pass", TESTS, limits=SandboxLimits(wall_time_s=2, cpu_time_s=2))
    assert g.fraction == 0.0 and g.limit == "timeout"


def test_tests_passed_before_a_hang_count():
    code = "def double(x):\n    while x < 0:\n        pass\n    return 2 * x"
    g = grade(code, TESTS, limits=SandboxLimits(wall_time_s=2, cpu_time_s=2))
    assert (g.passed, g.limit) == (2, "timeout")


def test_printed_fake_reports_do_not_count():
    code = "def double(x):\n    return 0\nfor i in range(3):\n    print('deadbeef', i, 1)"
    assert grade(code, TESTS).passed == 1


def test_setup_code_runs_before_the_solution():
    g = grade("def root(x):\n    return sqrt(x)", ["assert root(9) == 3"], setup="from math import sqrt")
    assert g.fraction == 1.0


def test_extract_code_takes_the_last_fenced_block():
    assert extract_code("Here:\n```python\ndef a(): pass\n```\nor\n```\ndef b(): pass\n```") == "def b(): pass\n"
    assert extract_code("def c(): pass") == "def c(): pass"


def test_every_shipped_problem_is_solved_by_its_reference_and_not_by_a_stub():
    problems = load_problems("sample")
    assert 30 <= len(problems) <= 50 and len({p.task_id for p in problems}) == len(problems)
    for p in problems:
        assert grade(p.solution, list(p.tests), p.setup).fraction == 1.0, p.task_id
        stub = f"def {p.entry_point}(*args):\n    return None"
        assert grade(stub, list(p.tests), p.setup).fraction < 1.0, p.task_id


def test_mbpp_and_humaneval_rows_become_problems(tmp_path):
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(json.dumps({
        "task_id": 7, "text": "Write a function to triple a number.", "code": "def triple(n):\n    return 3 * n",
        "test_list": ["assert triple(2) == 6", "assert triple(0) == 0"], "test_setup_code": "",
    }) + "\n")
    humaneval = tmp_path / "he.jsonl"
    humaneval.write_text(json.dumps({
        "task_id": "HE/0", "prompt": "from typing import List\n\ndef total(xs: List[int]) -> int:\n    \"\"\"Sum.\"\"\"\n",
        "canonical_solution": "    return sum(xs)\n", "entry_point": "total",
        "test": "def check(candidate):\n    assert candidate([1, 2]) == 3\n",
    }) + "\n")
    (p,) = load_problems(str(mbpp))
    assert p.entry_point == "triple" and "assert triple(2) == 6" in p.prompt
    assert grade(p.solution, list(p.tests), p.setup).fraction == 1.0
    (h,) = load_problems(str(humaneval))
    assert h.entry_point == "total" and h.setup == "from typing import List"
    answer = "def total(xs: List[int]) -> int:\n    return sum(xs)"
    assert grade(answer, list(h.tests), h.setup).fraction == 1.0


def test_unknown_shapes_and_offline_hub_datasets_are_one_line_errors(tmp_path, monkeypatch):
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(CookbookError, match="has none of the known shapes"):
        load_problems(str(odd))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CookbookError) as e:
        load_problems("mbpp")
    assert str(e.value).startswith("cannot load dataset 'mbpp' split 'test'") and "\n" not in str(e.value)


@pytest.fixture(scope="module")
def byte_renderer():
    """role_colon over the tiny byte-level tokenizer: it encodes any code."""
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.testing import tiny_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    return get_renderer("role_colon", get_tokenizer(str(tiny_tokenizer_path())))


def _env(renderer):
    from cookbook_cli.rl.code_env import CodeEnv
    from cookbook_cli.rl.code_problems import CodeProblem

    problem = CodeProblem("double", "Write `double(x)`.", "double", tuple(TESTS), solution="def double(x): ...")
    return CodeEnv(renderer, problem, SandboxLimits(wall_time_s=2, cpu_time_s=2))


@pytest.mark.parametrize(
    ("response", "reward", "metrics"),
    [
        ("```python\ndef double(x):\n    return 2 * x\n```", 1.0, {"correct": 1.0, "format": 1.0, "solved": 1.0}),
        ("def double(x):\n    return 2 * x", 0.9, {"correct": 1.0, "format": 0.0, "solved": 1.0}),
        ("```python\ndef double(x):\n    return x + 2\n```", 1 / 3, {"correct": 1 / 3, "solved": 0.0}),
        ("```python\ndef double(x):\n    while True:\n        pass\n```", 0.0, {"correct": 0.0, "timeout": 1.0}),
        ("no code at all", -0.1, {"correct": 0.0, "format": 0.0, "timeout": 0.0}),
    ],
)
def test_the_env_rewards_the_fraction_of_tests_passed(byte_renderer, response, reward, metrics):
    from cookbook_cli.testing import reply_tokens

    env = _env(byte_renderer)
    result = asyncio.run(env.step(reply_tokens(byte_renderer, response)))
    assert result.episode_done and result.reward == pytest.approx(reward)
    for k, v in metrics.items():
        assert result.metrics[k] == pytest.approx(v), k
    assert result.logs["reference"] == "def double(x): ..."


def test_a_group_of_answers_is_graded_concurrently_in_the_rollout(byte_renderer, scripted):
    """The builder's datasets, a group rollout with scripted answers: right, hanging, wrong, no code."""
    from cookbook_cli.rl.code_env import CodeBuilder
    from cookbook_cli.rl.rollouts import do_group_rollout
    from cookbook_cli.rl.types import EnvContext
    from cookbook_cli.testing import reply_tokens

    ctx = EnvContext("code", byte_renderer, byte_renderer.tokenizer, group_size=4, groups_per_batch=1)
    train, test = CodeBuilder(timeout_s=2)(ctx)
    assert test is not None and len(test) == 2
    builder = train.get_batch(0)[0]
    problem = builder.env_factory().problem
    answers = [
        f"```python\n{problem.solution}\n```",
        f"```python\ndef {problem.entry_point}(*args):\n    while True:\n        pass\n```",
        f"```python\ndef {problem.entry_point}(*args):\n    return None\n```",
        "I do not know.",
    ]
    served = iter(answers)  # one answer per sample, in order (the group may be sampled in one call)
    completer = scripted(lambda tokens, i: reply_tokens(byte_renderer, next(served)))
    rollout = asyncio.run(do_group_rollout(builder, completer))
    assert not rollout.errors
    steps = [t.transitions[-1] for t in rollout.group.trajectories]
    assert steps[0].reward == 1.0 and steps[0].metrics["solved"] == 1.0
    assert steps[1].reward == 0.0 and steps[1].metrics["timeout"] == 1.0
    assert steps[2].reward < 1.0 and steps[2].metrics["timeout"] == 0.0
    assert steps[3].reward == pytest.approx(-0.1)
