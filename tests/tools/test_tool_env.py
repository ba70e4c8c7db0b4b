"""Tool-use episodes: specs in the prompt, calls parsed by the renderer and
executed, results appended with their ids, all token-exact against each tool
family's own chat template; failures inside a rollout become tool messages."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from cookbook_cli.renderers import get_renderer
from cookbook_cli.rl.message_env import EnvFromMessageEnv
from cookbook_cli.rl.problem_env import ProblemGroupBuilder
from cookbook_cli.rl.rollouts import do_group_rollout
from cookbook_cli.rl.tool_env import QuestionToolEnv, number_matches, text_contains
from cookbook_cli.testing import assert_renderer_matches_template
from cookbook_cli.tokenizers import get_tokenizer
from cookbook_cli.tools import get_tool, tool
from cookbook_cli.types import Message, ToolCall, message_to_json

# (renderer, shared tokenizer folder, plugin distribution)
FAMILIES = {
    "qwen3": ("qwen3", "qwen3", "cookbook-qwen3"),
    "deepseek_v3": ("deepseekv3", "deepseek_v3", "cookbook-deepseek"),
    "gpt_oss": ("gpt_oss_medium_reasoning", "gpt_oss", "cookbook-gpt-oss"),
    "hf_template": ("hf_template", "qwen3", None),
}
# hf_template runs a tool-capable template as it is: Qwen2.5's (Hermes-style
# <tool_call> blocks, results grouped in a user turn) over Qwen3's tokenizer,
# which has the same special tokens. Qwen3's own template is no use to it in
# an episode: it rewrites an assistant turn's think block once a tool result
# follows, which hf_template refuses (the qwen3 renderer handles it).
QWEN2_5_TEMPLATE = Path(__file__).parent / "data" / "qwen2_5_chat_template.jinja"


def renderer_of(name: str, tokenizer):  # type: ignore[no-untyped-def]
    if name != "hf_template":
        return get_renderer(name, tokenizer)
    from cookbook_cli.renderers.hf_template import HFTemplateRenderer

    renderer = HFTemplateRenderer(tokenizer, QWEN2_5_TEMPLATE.read_text())
    renderer.name = "hf_template"
    return renderer


@pytest.fixture(params=list(FAMILIES))
def family(request, shared_tokenizers, load_only):
    name, folder, dist = FAMILIES[request.param]
    load_only(*([dist] if dist else []))
    tokenizer = get_tokenizer(str(shared_tokenizers / folder))
    template = QWEN2_5_TEMPLATE if name == "hf_template" else shared_tokenizers / folder / "chat_template.jinja"
    return renderer_of(name, tokenizer), template


@pytest.fixture
def qwen3(shared_tokenizers, load_only):
    load_only("cookbook-qwen3")
    return get_renderer("qwen3", get_tokenizer(str(shared_tokenizers / "qwen3")))


def reply(renderer, history: list[Message], message: Message, tools) -> list[int]:
    """The tokens a model writes for `message` after `history`: the rendered
    conversation's continuation of the generation prompt, up to its stop token."""
    prompt = renderer.build_generation_prompt(history, tools=tools).to_ints()
    full, _ = renderer.build_supervised_tokens([*history, message], "all_tokens", tools)
    assert full[: len(prompt)] == prompt
    rest = list(full[len(prompt) :])
    stops = set(renderer.stop_token_ids())
    end = next((i for i, t in enumerate(rest) if t in stops), len(rest) - 1)
    return rest[: end + 1]


def episode_env(renderer, tools, question="How many apples are in 37 crates of 24 and a search?", **options):
    env = QuestionToolEnv(tools, question, "888", number_matches, "Use the tools.", renderer=renderer, **options)
    return env, EnvFromMessageEnv(renderer, env)


def recorded(renderer, tools, **options):
    """A group of one episode, and the list its token-level env is put in when made."""
    made: list = []

    def make():
        _, token_env = episode_env(renderer, tools, **options)
        made.append(token_env)
        return token_env

    return ProblemGroupBuilder(make, 1), made


def run_group(builder, completer):
    rollout = asyncio.run(do_group_rollout(builder, completer))
    assert rollout.group is not None, rollout.errors
    return rollout.group


def test_a_tool_round_trip_is_token_exact_against_the_family_template(family, reply_script):
    renderer, template = family
    tools = [get_tool("calculator"), get_tool("search")]
    specs = [t.spec() for t in tools]
    calc = ToolCall("calculator", json.dumps({"expression": "37 * 24"}))
    search = ToolCall("search", json.dumps({"query": "Galyar founder"}))
    # Harmony (gpt-oss) writes one call per message. hf_template renders each message as
    # the text the template adds for it, and a template that groups consecutive results
    # in one turn (Qwen's) rewrites the first's end when the second is added, which
    # hf_template refuses: one call per turn there too (the family renderers take both).
    one_per_turn = renderer.name.startswith("gpt_oss") or renderer.name == "hf_template"
    turns = [[calc], [search]] if one_per_turn else [[calc, search]]
    builder, made = recorded(renderer, tools)

    def replies(prompt, n):
        history = made[0].history
        message = {"role": "assistant", "content": "", "tool_calls": turns[n]} if n < len(turns) else {"role": "assistant", "content": "888"}
        return reply(renderer, history, message, specs)

    script = reply_script(replies)
    group = run_group(builder, script)
    (traj,) = group.trajectories
    assert [t.reward for t in traj.transitions] == [0.0] * len(turns) + [1.0]
    metrics = traj.transitions[-1].metrics
    assert metrics["correct"] == 1.0 and metrics["tool_calls"] == 2 and metrics["used_tool"] == 1.0
    assert metrics["tool_call_rate"] == len(turns) / (len(turns) + 1) and metrics["tool_errors"] == 0 and metrics["answered"] == 1.0

    conversation = made[0].history
    said = [m for m in conversation if m.get("tool_calls")]
    results = [m for m in conversation if m["role"] == "tool"]
    # calls parsed back from the sampled tokens, given ids, answered in order by id
    parsed = [c for m in said for c in m["tool_calls"]]
    assert [(c.name, json.loads(c.arguments)) for c in parsed] == [
        ("calculator", {"expression": "37 * 24"}), ("search", {"query": "Galyar founder"})]
    assert [r["tool_call_id"] for r in results] == [c.id for c in parsed] and all(c.id for c in parsed)
    assert results[0]["content"] == "888" and "Oskar Ferro" in results[1]["content"]
    assert conversation[-1] == {"role": "assistant", "content": "888"}
    # the tools were declared in the first prompt, in the family's own format
    first = renderer.tokenizer.decode(script.prompts[0])
    assert all(t.name in first and t.description in first for t in tools)
    # each prompt extends the previous one: the episode is one growing sequence
    for a, b in zip(script.prompts, script.prompts[1:]):
        assert b[: len(a)] == a
    # and the whole episode is token for token what the model's chat template writes
    assert_renderer_matches_template(
        renderer,
        conversations=[{"messages": [message_to_json(m) for m in conversation], "tools": [s.to_openai() for s in specs]}],
        template=template,
    )


def test_a_timeout_and_an_exception_inside_a_rollout_are_results_the_model_sees(reply_script, qwen3):
    renderer = qwen3
    release = threading.Event()

    def stuck(x: int) -> str:
        """Never returns in time."""
        release.wait()
        return "late"

    def broken(x: int) -> str:
        """Always raises."""
        raise RuntimeError("disk on fire")

    tools = [tool(stuck, timeout_s=0.05), tool(broken)]
    specs = [t.spec() for t in tools]
    calls = [ToolCall("stuck", '{"x": 1}'), ToolCall("broken", '{"x": 2}'), ToolCall("missing", "{}"), ToolCall("broken", '{"y": 2}')]
    builder, envs = recorded(renderer, tools)

    def replies(prompt, n):
        if n == 0:
            return reply(renderer, envs[0].history, {"role": "assistant", "content": "", "tool_calls": calls}, specs)
        return reply(renderer, envs[0].history, {"role": "assistant", "content": "I could not compute it."}, specs)

    script = reply_script(replies)
    try:
        group = run_group(builder, script)
    finally:
        release.set()
    (traj,) = group.trajectories
    assert len(traj.transitions) == 2  # the rollout went on after the failures
    results = [m["content"] for m in envs[0].history if m["role"] == "tool"]
    assert results == [
        "Error: stuck did not finish within 0.05 s",
        "Error: broken failed: RuntimeError: disk on fire",
        "Error: unknown tool 'missing'; the tools are: broken, stuck",
        "Error: bad arguments for broken: missing required argument 'x'; unexpected argument 'y' (arguments: x)",
    ]
    seen = renderer.tokenizer.decode(script.prompts[1])
    assert "disk on fire" in seen and "did not finish" in seen  # the model read them
    m = traj.transitions[-1].metrics
    assert (m["tool_error/timeout"], m["tool_error/exception"], m["tool_error/unknown_tool"], m["tool_error/bad_arguments"]) == (1, 1, 1, 1)
    assert m["correct"] == 0.0 and m["answered"] == 1.0


def test_malformed_calls_the_turn_limit_and_the_token_budget(reply_script, qwen3):
    renderer = qwen3
    calc = [get_tool("calculator")]
    enc = renderer.tokenizer.encode
    stop = renderer.stop_token_ids()[:1]
    broken_call = enc('<tool_call>\n{"name": "calculator", "arguments": {"expression": \n</tool_call>') + stop
    good_call = enc('<tool_call>\n{"name": "calculator", "arguments": {"expression": "1 + 1"}}\n</tool_call>') + stop

    # only a malformed call: its error comes back in a user turn (no call for a tool result to answer)
    builder, envs = recorded(renderer, calc, max_turns=2)
    group = run_group(builder, reply_script(lambda p, n: broken_call))
    last = envs[-1].history
    assert last[-1]["role"] == "user" and last[-1]["content"].startswith("Error: the tool call could not be parsed")
    assert '"expression": ' in last[-2]["content"]  # what the model wrote stays in its turn
    m = group.trajectories[0].transitions[-1].metrics
    assert m["turn_limit"] == 1.0 and m["tool_error/malformed"] == 2 and m["correct"] == 0.0

    # a budget smaller than the prompt after one call ends the episode there
    group = run_group(recorded(renderer, calc, max_episode_tokens=10)[0], reply_script(lambda p, n: good_call))
    (traj,) = group.trajectories
    assert len(traj.transitions) == 1 and traj.transitions[0].metrics["token_budget"] == 1.0


@pytest.mark.parametrize(("answer", "reference", "ok"), [
    ("The answer is 1,118.", "1118", True), ("888", "888.0", True), ("87 then 88", "87", False), ("none", "3", False),
])
def test_number_matches(answer, reference, ok):
    assert number_matches(answer, reference) is ok


def test_text_contains():
    assert text_contains("It was Oskar Ferro!", "oskar ferro") and not text_contains("Oskar Ferrot", "Oskar Ferro")


def test_the_builders_split_show_an_example_and_refuse_what_cannot_work(qwen3, shared_tokenizers):
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.rl.calculator_env import CalculatorBuilder
    from cookbook_cli.rl.search_env import SearchBuilder
    from cookbook_cli.rl.types import EnvContext

    ctx = EnvContext("calculator", qwen3, qwen3.tokenizer, group_size=2, groups_per_batch=4, seed=3)
    train, test = CalculatorBuilder()(ctx)
    first = asyncio.run(train.get_batch(0)[0].make_envs())[0]
    messages = asyncio.run(first.message_env.initial_messages())
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert messages[2]["tool_calls"][0].name == "calculator" and first.message_env.tools[0].name == "calculator"
    questions = lambda ds, n: {e.message_env.question for b in range(n) for g in ds.get_batch(b) for e in asyncio.run(g.make_envs())}  # noqa: E731
    assert len(questions(test, len(test))) == 20 and not questions(test, len(test)) & questions(train, 20)
    assert questions(train, 2) == questions(CalculatorBuilder()(ctx)[0], 2)  # seeded: the same problems again
    assert asyncio.run(CalculatorBuilder(few_shot=False)(ctx)[0].get_batch(0)[0].make_envs())[0].message_env.examples == []

    role_colon = get_renderer("role_colon", qwen3.tokenizer)
    with pytest.raises(CookbookError, match="needs a renderer with a tool-call format"):
        SearchBuilder()(EnvContext("search", role_colon, qwen3.tokenizer, 2, 2))
    with pytest.raises(CookbookError, match="all held out"):
        SearchBuilder(test_size=500)(EnvContext("search", qwen3, qwen3.tokenizer, 2, 2))
