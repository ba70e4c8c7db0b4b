"""Built-in env `calculator`: arithmetic word problems, with a `calculator` tool.

"There are 36 boxes holding 38 pencils each. 250 pencils are sold. How many
pencils are left?" The model may call the `calculator` tool (safe arithmetic)
as often as it likes within `max_turns`; its final answer (a reply without a
tool call) is correct when its last number is the reference. 300 problems
with 2-3 digit numbers (multiplication, division, change, sums over days) are
shipped; `env.path=openai/gsm8k` trains on GSM8K instead (its answers end
`#### <number>`).
"""

from __future__ import annotations

from typing import Any

import chz

from cookbook_cli.rl.tool_env import ToolEnvBuilder, number_matches, solved_example
from cookbook_cli.rl.tool_rows import dataset_rows, shipped_rows

SYSTEM_PROMPT = (
    "Solve the problem. Use the calculator tool for arithmetic. "
    "When you know the answer, reply with just the final number."
)


def gsm8k_answer(solution: str) -> str:
    """The number after GSM8K's `####`."""
    return solution.rsplit("####", 1)[-1].strip().replace(",", "")


@chz.chz
class CalculatorBuilder(ToolEnvBuilder):
    """Arithmetic word problems; reward 1 when the final answer's last number is right."""

    path: str = chz.field(default="", doc="empty: the 300 shipped problems; else a Hub id (openai/gsm8k) or a local file")
    max_rows: int = chz.field(default=0, doc="read at most this many rows of the dataset (0: all)")

    tool_names = ("calculator",)
    default_system_prompt = SYSTEM_PROMPT
    default_config_name = "main"  # openai/gsm8k's
    default_max_tokens = 128

    def load_rows(self) -> list[dict[str, str]]:
        if not self.path:
            return shipped_rows("calculator_problems.jsonl")
        return dataset_rows(self.path, self.dataset_config(), self.split, "question", "answer",
                            gsm8k_answer, self.max_rows or None)

    def matches(self, answer: str, reference: str) -> bool:
        return number_matches(answer, reference)

    def examples(self) -> list:
        return solved_example("A baker fills 14 trays with 23 rolls each. How many rolls are there?",
                              "calculator", {"expression": "14 * 23"}, "322", "322")

    def local_defaults(self) -> dict[str, Any]:
        # SmolLM2's format (with its tool syntax): the local engine's default model for it is a
        # tiny random model over SmolLM2's tokenizer, a quick offline smoke run;
        # `--model smollm2-135m-instruct` trains the real model.
        return {"renderer": "smollm2"}
