"""The `code` env with `env.tools=python`: the model runs code in the sandbox
through the python tool, then answers; the answer is graded by the hidden tests."""

from __future__ import annotations

import asyncio
import json

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.rl.code_env import CodeBuilder
from cookbook_cli.rl.rollouts import do_group_rollout
from cookbook_cli.rl.types import EnvContext
from cookbook_cli.types import ToolCall


@pytest.fixture
def qwen3(shared_tokenizers, load_only):
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.tokenizers import get_tokenizer

    load_only("cookbook-qwen3")
    return get_renderer("qwen3", get_tokenizer(str(shared_tokenizers / "qwen3")))


def _continuation(renderer, history, message, tools) -> list[int]:
    """What a model writes for `message` after `history` (up to its stop token)."""
    prompt = renderer.build_generation_prompt(history, tools=tools).to_ints()
    full, _ = renderer.build_supervised_tokens([*history, message], "all_tokens", tools)
    rest = list(full[len(prompt):])
    stops = set(renderer.stop_token_ids())
    return rest[: next(i for i, t in enumerate(rest) if t in stops) + 1]


def test_the_model_tries_code_with_the_python_tool_then_answers(qwen3, scripted, bwrap_backend):
    ctx = EnvContext("code", qwen3, qwen3.tokenizer, group_size=1, groups_per_batch=1)
    train, _ = CodeBuilder(tools="python", timeout_s=3)(ctx)
    group = train.get_batch(0)[0]
    envs: list = []

    def make():
        envs.append(group.env_factory())
        return envs[-1]

    def answer(prompt, n):
        env = envs[0]
        problem, specs = env.message_env.problem, env.message_env.tools
        if n == 0:
            code = f"{problem.solution}\nprint('tried', {problem.entry_point}.__name__)"
            message = {"role": "assistant", "content": "", "tool_calls": [ToolCall("python", json.dumps({"code": code}), id="t1")]}
        else:
            message = {"role": "assistant", "content": f"```python\n{problem.solution}\n```"}
        return _continuation(qwen3, env.history, message, specs)

    from cookbook_cli.rl.problem_env import ProblemGroupBuilder

    rollout = asyncio.run(do_group_rollout(ProblemGroupBuilder(make, 1), scripted(answer)))
    assert not rollout.errors
    (traj,) = rollout.group.trajectories
    (result,) = [m["content"] for m in envs[0].history if m["role"] == "tool"]
    assert result == f"exit status 0\nstdout:\ntried {envs[0].message_env.problem.entry_point}\n"
    last = traj.transitions[-1]
    assert len(traj.transitions) == 2 and last.reward == 1.0
    assert last.metrics["tool_calls"] == 1.0 and last.metrics["used_tool"] == 1.0 and last.metrics["correct"] == 1.0
    assert last.logs["reference"] == envs[0].message_env.problem.solution


def test_tools_need_a_renderer_with_a_tool_format_and_known_names(qwen3, toy_renderer):
    toy = EnvContext("code", toy_renderer, toy_renderer.tokenizer, group_size=2, groups_per_batch=1)
    with pytest.raises(CookbookError, match="env 'code' needs a renderer with a tool-call format; 'role_colon' has none"):
        CodeBuilder(tools="python")(toy)
    ctx = EnvContext("code", qwen3, qwen3.tokenizer, group_size=2, groups_per_batch=1)
    with pytest.raises(CookbookError, match="unknown tool 'pyhton'"):
        CodeBuilder(tools="pyhton")(ctx)
