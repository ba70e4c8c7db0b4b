"""Core's built-in environments, registered through `register_envs`."""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_envs")
def register_builtin_envs(register: Register) -> None:
    from cookbook_cli.rl.arithmetic import ArithmeticBuilder
    from cookbook_cli.rl.first_token import FirstTokenBuilder
    from cookbook_cli.rl.preference_env import PreferenceEnvBuilder

    register("arithmetic", ArithmeticBuilder, "Synthetic addition problems (offline): reward for the right sum")
    register("first_token", FirstTokenBuilder, "Toy: reward 1 when the response starts with a fixed token")
    register("preference", PreferenceEnvBuilder, "RLHF: replies to prompts rewarded by their win rates under a preference model (env.judge=RUN)")
