"""A toy model learns to call a tool: tool-call rate and reward rise.

The toy: a tiny random model over the 34-token toy tokenizer, replying one
token a turn in a format where the token `?` is a call of the `look` tool
(which answers `s`) and any other token is a final answer. An episode earns
0.5 for looking the answer up and 0.5 more for then answering what the tool
said; an answer given without looking scores nothing. At the start the call
is sampled about once in 34 turns; RL makes it the rule, through the real
ToolUseEnv (calls parsed by the renderer, executed, results appended)."""

from __future__ import annotations

import json

import chz
import pytest

from cookbook_cli import hookimpl
from cookbook_cli.recipes.rl import RLConfig, train
from cookbook_cli.renderers.base import RenderedMessage, Renderer
from cookbook_cli.renderers.termination import Termination
from cookbook_cli.rl.tool_env import QuestionToolEnv, ToolEnvBuilder
from cookbook_cli.rl.toy_tokenizer import toy_model
from cookbook_cli.run.options import RunOptions
from cookbook_cli.tools import tool
from cookbook_cli.types import ToolCall, text_of

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROLES = {"system": "S", "user": "U", "assistant": "A", "tool": "S"}


class OneTokenToolRenderer(Renderer):
    """`U:question\\nA:?\\nS:s\\nA:s\\n`: one token a reply; `?` calls `look`."""

    supports_tools = True

    def render_conversation(self, messages, tools):  # type: ignore[no-untyped-def]
        return [RenderedMessage(f"{ROLES[m['role']]}:", "?" if m.get("tool_calls") else text_of(m), "\n") for m in messages]

    def generation_header(self, messages, role, tools):  # type: ignore[no-untyped-def]
        return f"{ROLES[role]}:"

    def stop_token_ids(self):  # type: ignore[no-untyped-def]
        return []

    def eos_token_ids(self):  # type: ignore[no-untyped-def]
        return []

    def get_stop_sequences(self):  # type: ignore[no-untyped-def]
        return ["\n"]

    def parse_response(self, tokens):  # type: ignore[no-untyped-def]
        text = self.tokenizer.decode(list(tokens))
        if text == "?":
            return {"role": "assistant", "content": "", "tool_calls": [ToolCall("look", "{}")]}, Termination.STOP
        return {"role": "assistant", "content": text}, Termination.STOP


class ToyPlugin:
    @staticmethod
    @hookimpl
    def register_renderers(register):  # type: ignore[no-untyped-def]
        register("one_token_tools", OneTokenToolRenderer, "toy: one token a reply, ? calls the look tool")


@tool
def look() -> str:
    """Look the answer up."""
    return "s"


class LookupEnv(QuestionToolEnv):
    def grade(self, answer: str) -> float:
        looked = any(o.error is None for o in self.outcomes)
        return 0.5 * looked + 0.5 * (looked and answer == self.reference)


@chz.chz
class LookupBuilder(ToolEnvBuilder):
    default_max_tokens = 1

    def tools(self):  # type: ignore[no-untyped-def]
        return [look]

    def load_rows(self):  # type: ignore[no-untyped-def]
        return [{"question": q, "answer": "s"} for q in ("what is it?", "say it", "the word?", "answer me")]

    def make_message_env(self, row, renderer):  # type: ignore[no-untyped-def]
        return LookupEnv(self.tools(), row["question"], row["answer"], self.matches, renderer=renderer, max_turns=3)


def test_tool_call_rate_and_reward_rise(tmp_path, cookbook_plugin):
    cookbook_plugin(ToyPlugin(), "toy-tools")
    cfg = RLConfig(
        env=LookupBuilder(test_size=0),
        model=toy_model("tiny"),
        renderer="one_token_tools",
        learning_rate=3e-2,
        lora_rank=0,
        log_dir=str(tmp_path / "run"),
        max_steps=14,
        group_size=8,
        groups_per_batch=8,
        save_every=0,
        num_groups_to_log=1,
        engine_options={"device": "cpu"},
    )
    result = train(cfg, RunOptions(progress=False, on_log=lambda m: None))
    rows = [json.loads(line) for line in (result.log_dir / "metrics.jsonl").read_text().splitlines()]
    reward = [r["env/reward/mean"] for r in rows]
    used = [r.get("env/used_tool", 0.0) for r in rows]
    print("reward", [round(x, 2) for x in reward], "\nused_tool", [round(x, 2) for x in used])
    assert sum(used[:2]) / 2 <= 0.3 and sum(reward[:2]) / 2 <= 0.2  # the call is rare at first
    assert sum(used[-3:]) / 3 >= 0.7, used
    assert sum(reward[-3:]) / 3 >= 0.4, reward  # 0.5 needs the lookup
    # the transcripts show the calls and the results
    html = "\n".join(p.read_text() for p in (result.log_dir / "transcripts").glob("*.html"))
    assert "tools_used: look" in html
