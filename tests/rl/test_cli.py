"""The RL commands: `envs list`, `train rl` options and config words, and its one-line errors."""

from __future__ import annotations

import json
import math

import chz
import pytest
from typer.testing import CliRunner

from cookbook_cli import hookimpl
from cookbook_cli.cli.main import app
from cookbook_cli.rl.types import RLDatasetBuilder

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_envs_list_json_shows_the_builtins_with_their_options():
    result = invoke("envs", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"arithmetic", "first_token"} <= set(rows)
    assert rows["arithmetic"]["plugin"] == "cookbook-cli"
    options = {o["name"]: o["default"] for o in rows["arithmetic"]["options"]}
    assert options["max_operand"] == 99 and options["few_shot"] is True


def test_envs_list_table():
    result = invoke("envs", "list")
    assert result.exit_code == 0 and "first_token" in result.output and "env.target=A" in result.output


def test_an_installed_env_plugin_appears_in_envs_list(load_only):
    pytest.importorskip("cookbook_guess_number", reason="pip install -e plugins/cookbook-guess-number")
    load_only("cookbook-guess-number")
    rows = {r["name"]: r for r in json.loads(invoke("envs", "list", "--json").output)}
    assert rows["guess_number"]["plugin"] == "cookbook-guess-number"


def test_unknown_env_name_suggests_close_names():
    result = invoke("train", "rl", "--env", "aritmetic")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        "Error: unknown environment 'aritmetic'. Did you mean 'arithmetic'? Valid environments: arithmetic, "
        "calculator, code, first_token, preference, search. Run `cookbook envs list` to see them all."
    ]


def test_dry_run_resolves_options_and_config_words():
    result = invoke(
        "train", "rl", "--env", "first_token", "--group-size", "6", "--max-steps-off-policy", "2", "--loss", "ppo",
        "--dry-run", "env.target=S", "temperature=0.5", "loss_fn_config.clip_low_threshold=0.7",
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    assert cfg["env"] == {"name": "first_token", "target": "S", "n_batches": 20}
    assert cfg["group_size"] == 6 and cfg["max_steps_off_policy"] == 2 and cfg["loss_fn"] == "ppo"
    assert cfg["temperature"] == 0.5 and cfg["loss_fn_config"] == {"clip_low_threshold": 0.7}
    # the env's suggestion on the local engine: a tiny random model over the toy tokenizer
    assert cfg["model"].startswith("random:tiny:") and cfg["model"].endswith("tokenizer.json")
    assert cfg["renderer"] == "role_colon" and cfg["lora_rank"] == 0 and cfg["learning_rate"] == 0.03
    assert cfg["max_tokens"] == 1 and cfg["log_dir"].startswith("runs/rl-first-token-tiny-")


def test_explicit_model_overrides_the_env_suggestion():
    result = invoke("train", "rl", "--env", "first_token", "--model", "random:tiny:llama3", "--dry-run")
    cfg = json.loads(result.output)
    assert cfg["model"] == "random:tiny:llama3" and cfg["renderer"] == "llama3"
    assert cfg["lora_rank"] == 32 and cfg["learning_rate"] == 1e-2  # the common defaults


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env.nope=1"], "unknown config field 'env.nope'"),
        (["--loss", "ppx"], "unknown loss function 'ppx'. Did you mean 'ppo'?"),
        (["--group-size", "0"], "group_size must be at least 1"),
        (["--if-exists", "maybe"], "unknown --if-exists value 'maybe'"),
    ],
)
def test_bad_input_is_one_line(args, message):
    result = invoke("train", "rl", "--env", "first_token", "--dry-run", *args)
    assert result.exit_code != 0
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


@chz.chz
class NanBuilder(RLDatasetBuilder):
    default_max_tokens = 1

    def __call__(self, ctx):
        import functools

        from cookbook_cli.rl.first_token import FirstTokenEnv
        from cookbook_cli.rl.problem_env import SeededProblemDataset

        class Nan(FirstTokenEnv):
            async def step(self, action):
                result = await super().step(action)
                result.reward = math.nan
                return result

        return SeededProblemDataset(ctx, lambda rng: functools.partial(Nan, ctx.renderer, "hi", 1), 5), None


class NanPlugin:
    @hookimpl
    def register_envs(self, register):
        register("nan_env", NanBuilder, "rewards NaN")


def test_a_nan_reward_ends_the_cli_run_with_one_line(tmp_path, cookbook_plugin):
    pytest.importorskip("torch")
    from cookbook_cli.rl.toy_tokenizer import toy_model

    cookbook_plugin(NanPlugin(), name="nan-plugin")
    result = invoke(
        "train", "rl", "--env", "nan_env", "--model", toy_model(), "--renderer", "role_colon",
        "--log-dir", str(tmp_path / "run"), "--group-size", "2", "--groups-per-batch", "1",
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: env 'nan_env' returned a non-finite reward (nan) from Env.step; rewards must be finite numbers: "
        "fix the env's reward computation"
    )
    assert "Traceback" not in result.output
