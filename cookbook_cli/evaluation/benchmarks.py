"""Graded benchmarks: problems with reference answers and a grader.

Each problem is a prompt conversation and its answer; the model samples
`num_samples` replies (greedy by default), each is graded, and the result is
the accuracy (the fraction of correct replies), pass@k for each k in `pass_k`
(the unbiased estimator over the samples) and `clean_end` (the fraction of
replies that ended at the renderer's stop sequence rather than running out of
tokens). Benchmarks:

- `gsm8k`: grade-school math; the number after `####` (or in `\\boxed{}`, or
  the last number) must equal the reference's `####` answer;
- `multiple_choice`: a question and options A, B, C, ...; the letter the reply
  answers with must be the reference's (MMLU's layout by default);
- `arithmetic`: the 25 sums a + b of 0 <= a, b <= 4, shipped with cookbook (no network), in the
  `arithmetic` env's format, graded as the env grades (the first integer).

`gsm8k` and `multiple_choice` load through `datasets.load_dataset(path,
name, split=split)`, or from a local JSON/JSONL/CSV/Parquet file given as
`path`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import chz

from cookbook_cli.errors import CookbookError, first_line
from cookbook_cli.evaluation.base import EvalContext, Evaluator, Example, check_pass_k, pass_at_k
from cookbook_cli.evaluation.graders import extract_letter, first_integer_matches, numbers_match, option_letters
from cookbook_cli.types import Message, text_of


@dataclass(frozen=True)
class Problem:
    id: str
    messages: list[Message]
    answer: str
    letters: str = ""  # a multiple-choice problem's option letters


@chz.chz
class GradedBenchmark(Evaluator):
    """Sample replies to each problem and grade them (subclasses say which problems and how)."""

    num_samples: int = chz.field(default=1, doc="replies sampled per problem")
    temperature: float = chz.field(default=0.0, doc="sampling temperature (0: greedy)")
    max_tokens: int = chz.field(default=512, doc="most tokens per reply")
    max_examples: int | None = chz.field(default=None, doc="evaluate the first N problems only")
    pass_k: list[int] = chz.field(default_factory=lambda: [1], doc="report pass@k for these k (each <= num_samples)")

    @chz.validate
    def _check_counts(self) -> None:
        if self.num_samples < 1:
            raise CookbookError(f"num_samples must be at least 1, got {self.num_samples}")
        if self.max_examples is not None and self.max_examples < 1:
            raise CookbookError(f"max_examples must be at least 1, got {self.max_examples}")
        check_pass_k(self.pass_k, self.num_samples)

    def problems(self) -> list[Problem]:
        raise NotImplementedError(f"{type(self).__name__} must implement problems()")

    def grade(self, response: str, problem: Problem) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must implement grade(response, problem)")

    def examples(self, ctx: EvalContext) -> list[Example]:
        problems = self.problems()
        if self.max_examples is not None:
            problems = problems[: self.max_examples]
        if not problems:
            raise CookbookError(f"{type(self).__name__} has no problems to evaluate")
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):
            raise CookbookError(f"{type(self).__name__}: two problems share an id, so results could not resume by id")
        return [Example(p.id, p) for p in problems]

    def works_on_messages(self) -> bool:
        return True

    async def evaluate(self, example: Example, ctx: EvalContext) -> dict[str, Any]:
        from cookbook_cli.completers import SamplingSettings

        problem: Problem = example.data
        settings = SamplingSettings(max_tokens=self.max_tokens, temperature=self.temperature)
        completions = await ctx.message_completer(settings, example.id)(problem.messages, None, self.num_samples)
        graded = [self.grade(text_of(c.message), problem) for c in completions]
        n, c = len(graded), sum(graded)
        metrics = {"accuracy": c / n, "clean_end": sum(x.ok for x in completions) / n}
        metrics.update({f"pass@{k}": pass_at_k(n, c, k) for k in self.pass_k})
        return {
            "id": example.id,
            "prompt": text_of(problem.messages[-1]),
            "answer": problem.answer,
            "responses": [
                {"text": text_of(x.message), "termination": x.termination, "correct": ok} for x, ok in zip(completions, graded)
            ],
            "metrics": metrics,
        }


def load_rows(path: str, name: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a local data file, or of a dataset through `datasets.load_dataset`."""
    local = Path(path).expanduser()
    try:
        import datasets

        if local.is_file():
            kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(local.suffix.lower())
            if kind is None:
                raise CookbookError(f"benchmark file {path!r} must be .jsonl, .json, .csv or .parquet")
            ds = datasets.load_dataset(kind, data_files=str(local), split="train")
        elif local.exists() or path.startswith((".", "/", "~")):
            raise CookbookError(f"benchmark file {path!r} does not exist")
        else:
            ds = datasets.load_dataset(path, name, split=split)
    except CookbookError:
        raise
    except Exception as e:  # noqa: BLE001 - network, hub and format errors of every kind become one line
        raise CookbookError(f"cannot load benchmark data {path!r} (name={name}, split={split}): {first_line(e)}") from None
    return [dict(r) for r in ds]


def _field(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise CookbookError(f"{where} has no field {key!r} (fields: {', '.join(sorted(row))})")
    return row[key]


@chz.chz
class GSM8K(GradedBenchmark):
    """GSM8K: grade-school math word problems, graded by the final number."""

    path: str = chz.field(default="openai/gsm8k", doc="dataset id, or a local .jsonl/.json/.csv/.parquet file")
    name: str | None = chz.field(default="main", doc="dataset configuration")
    split: str = chz.field(default="test", doc="dataset split")
    question_field: str = chz.field(default="question", doc="field holding the problem")
    answer_field: str = chz.field(default="answer", doc="field holding the solution, ending '#### <number>'")
    instruction: str = chz.field(
        default="Solve the problem step by step, then give the final answer on the last line as '#### <number>'.",
        doc="appended to each problem",
    )

    def problems(self) -> list[Problem]:
        out = []
        for i, row in enumerate(load_rows(self.path, self.name, self.split)):
            where = f"{self.path} row {i}"
            question = str(_field(row, self.question_field, where))
            answer = str(_field(row, self.answer_field, where))
            content = f"{question}\n\n{self.instruction}" if self.instruction else question
            out.append(Problem(str(row.get("id", i)), [{"role": "user", "content": content}], answer))
        return out

    def grade(self, response: str, problem: Problem) -> bool:
        return numbers_match(response, problem.answer)


@chz.chz
class MultipleChoice(GradedBenchmark):
    """Multiple-choice questions (MMLU's layout by default), graded by the answer letter."""

    path: str = chz.field(default="cais/mmlu", doc="dataset id, or a local .jsonl/.json/.csv/.parquet file")
    name: str | None = chz.field(default="all", doc="dataset configuration")
    split: str = chz.field(default="test", doc="dataset split")
    question_field: str = chz.field(default="question", doc="field holding the question")
    choices_field: str = chz.field(default="choices", doc="field holding the list of options")
    answer_field: str = chz.field(default="answer", doc="field holding the answer: an option index (0 = A) or letter")
    max_tokens: int = chz.field(default=32, doc="most tokens per reply")
    instruction: str = chz.field(default="Answer with the letter of the correct option.", doc="appended to each question")

    def problems(self) -> list[Problem]:
        out = []
        for i, row in enumerate(load_rows(self.path, self.name, self.split)):
            where = f"{self.path} row {i}"
            choices = _field(row, self.choices_field, where)
            if not isinstance(choices, list) or not 2 <= len(choices) <= 26:
                raise CookbookError(f"{where}: field {self.choices_field!r} must be a list of 2 to 26 options")
            letters = option_letters(len(choices))
            answer = _field(row, self.answer_field, where)
            if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
                letter = letters[answer]
            elif isinstance(answer, str) and answer.strip().upper() in letters and len(answer.strip()) == 1:
                letter = answer.strip().upper()
            else:
                raise CookbookError(f"{where}: answer {answer!r} is neither an option index nor one of the letters {letters}")
            options = "\n".join(f"{l}. {c}" for l, c in zip(letters, choices))
            content = f"{_field(row, self.question_field, where)}\n\n{options}"
            if self.instruction:
                content += f"\n\n{self.instruction}"
            out.append(Problem(str(row.get("id", i)), [{"role": "user", "content": content}], letter, letters))
        return out

    def grade(self, response: str, problem: Problem) -> bool:
        return extract_letter(response, problem.letters) == problem.answer


def arithmetic_path() -> Path:
    return Path(str(resources.files("cookbook_cli.evaluation") / "data" / "arithmetic.jsonl"))


@chz.chz
class ArithmeticBenchmark(GradedBenchmark):
    """The 25 sums a + b of 0 <= a, b <= 4 (offline), in the `arithmetic` env's format."""

    path: str = chz.field(default="", doc="a .jsonl of {id, question, answer}; default: the shipped problems")
    few_shot: bool = chz.field(default=True, doc="start with the env's solved example, as `train rl --env arithmetic` does")
    max_tokens: int = chz.field(default=16, doc="most tokens per reply (the env's default)")

    def problems(self) -> list[Problem]:
        from cookbook_cli.rl.arithmetic import few_shot_messages

        path = Path(self.path).expanduser() if self.path else arithmetic_path()
        if not path.is_file():
            raise CookbookError(f"arithmetic problems file {str(path)!r} does not exist")
        prefix = few_shot_messages() if self.few_shot else []
        out = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pid, question, answer = str(row["id"]), str(row["question"]), str(row["answer"])
            except (ValueError, KeyError, TypeError):
                raise CookbookError(f"{path}:{lineno}: expected {{\"id\", \"question\", \"answer\"}}") from None
            out.append(Problem(pid, [*prefix, {"role": "user", "content": question}], answer))
        return out

    def grade(self, response: str, problem: Problem) -> bool:
        return first_integer_matches(response, problem.answer)
