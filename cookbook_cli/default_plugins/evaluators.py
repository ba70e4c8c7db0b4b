"""Core's built-in evaluators, registered through `register_evaluators`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_evaluators")
def register_builtin_evaluators(register: Register) -> None:
    from cookbook_cli.evaluation.benchmarks import GSM8K, ArithmeticBenchmark, MultipleChoice
    from cookbook_cli.evaluation.env_eval import EnvEvaluator
    from cookbook_cli.evaluation.nll import NLLEvaluator
    from cookbook_cli.evaluation.win_rate import WinRateEvaluator

    register("nll", NLLEvaluator, "Mean NLL and bits per byte of the trained tokens of a conversation file")
    register("env", EnvEvaluator, "Any RL env's test split as a benchmark: mean reward, pass@k, the env's metrics")
    register("gsm8k", GSM8K, "GSM8K math word problems, graded by the final number (datasets.load_dataset or a local file)")
    register("multiple_choice", MultipleChoice, "Multiple-choice questions (MMLU layout), graded by the answer letter")
    register("arithmetic", ArithmeticBenchmark, "The 25 sums a + b of 0 <= a, b <= 4, shipped with cookbook (offline), graded as the arithmetic env")
    register("win_rate", WinRateEvaluator, "Win rate of the model's replies against a baseline's, judged by a preference model (judge=RUN)")
