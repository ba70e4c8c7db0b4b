"""Core's built-in environments, registered through `register_envs`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_envs")
def register_builtin_envs(register: Register) -> None:
    from cookbook_cli.rl.arithmetic import ArithmeticBuilder
    from cookbook_cli.rl.calculator_env import CalculatorBuilder
    from cookbook_cli.rl.code_env import CodeBuilder
    from cookbook_cli.rl.first_token import FirstTokenBuilder
    from cookbook_cli.rl.preference_env import PreferenceEnvBuilder
    from cookbook_cli.rl.search_env import SearchBuilder

    register("arithmetic", ArithmeticBuilder, "Synthetic addition problems (offline): reward for the right sum")
    register("code", CodeBuilder, "Write a Python function; hidden unit tests run in the sandbox: reward = tests passed")
    register("first_token", FirstTokenBuilder, "Toy: reward 1 when the response starts with a fixed token")
    register("calculator", CalculatorBuilder, "Arithmetic word problems with a calculator tool (300 shipped; GSM8K by env.path)")
    register("search", SearchBuilder, "Questions answered from a document collection through a BM25 search tool (shipped sample)")
    register("preference", PreferenceEnvBuilder, "RLHF: replies to prompts rewarded by their win rates under a preference model (env.judge=RUN)")
