"""Per-model learning-rate defaults: the family's rule over the hidden size
(tinker-cookbook's `get_lr`), shown by `cookbook models info` and used when a
run sets no --lr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.models import default_learning_rate, learning_rate_default

runner = CliRunner()


@pytest.fixture(autouse=True)
def family_plugins(load_only) -> None:  # type: ignore[no-untyped-def]
    load_only("cookbook-qwen3", "cookbook-gpt-oss")


@pytest.mark.parametrize(
    "model, lora",
    [
        # 5e-4 * (2000 / hidden) ** exponent, the values tinker-cookbook's get_lr gives
        ("meta-llama/Llama-3.2-1B-Instruct", 5e-4 * (2000 / 2048) ** 0.781),
        ("meta-llama/Llama-3.1-70B-Instruct", 5e-4 * (2000 / 8192) ** 0.781),
        ("Qwen/Qwen3-8B", 5e-4 * (2000 / 4096) ** 0.0775),
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", 5e-4 * (2000 / 2048) ** 0.0775),
    ],
)
def test_calibrated_families_scale_with_the_hidden_size(model: str, lora: float) -> None:
    lr = learning_rate_default(model)
    assert lr.lora == pytest.approx(lora) and lr.full == pytest.approx(lora / 10)
    assert default_learning_rate(model, "tinker", 32) == pytest.approx(lora)
    assert default_learning_rate(model, "local", 0) == pytest.approx(lora / 10)


def test_larger_llamas_get_lower_rates() -> None:
    sizes = ["meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]
    rates = [learning_rate_default(m).lora for m in sizes]
    assert rates == sorted(rates, reverse=True) and rates[0] > 1.5 * rates[-1]


def test_a_model_folder_gives_its_hidden_size_through_config_json(tmp_path: Path) -> None:
    folder = tmp_path / "Llama-3.2-1B-my-finetune"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 1024}))
    lr = learning_rate_default(str(folder))
    assert lr.full == pytest.approx(5e-5 * (2000 / 1024) ** 0.781)
    assert "hidden size 1024" in lr.rule
    nested = tmp_path / "qwen3-vl-4b"
    nested.mkdir()
    (nested / "config.json").write_text(json.dumps({"text_config": {"hidden_size": 2560}}))
    assert learning_rate_default(str(nested)).full == pytest.approx(5e-5 * (2000 / 2560) ** 0.0775)


@pytest.mark.parametrize(
    "model, reason",
    [
        ("openai/gpt-oss-20b", "has no calibrated rule"),
        ("meta-llama/Llama-3.2-11B-Vision", "hidden size of meta-llama/Llama-3.2-11B-Vision unknown"),
        ("mistralai/Mistral-7B", "no model family matches"),
    ],
)
def test_without_a_rule_the_generic_rate_says_why(model: str, reason: str) -> None:
    lr = learning_rate_default(model)
    assert (lr.lora, lr.full) == (2e-4, 2e-5) and reason in lr.rule


def test_models_trained_from_scratch_keep_their_high_rate() -> None:
    assert default_learning_rate("random:tiny:meta-llama/Llama-3.2-1B-Instruct", "local", 32) == 1e-2


def test_models_info_shows_the_rate_and_its_rule() -> None:
    out = runner.invoke(app, ["models", "info", "meta-llama/Llama-3.2-1B-Instruct"])
    assert out.exit_code == 0, out.output
    assert "learning rate: 0.000491 LoRA, 4.91e-05 full fine-tuning" in out.output
    assert "(2000/2048)^0.781" in out.output
    info = json.loads(runner.invoke(app, ["models", "info", "Qwen/Qwen3-8B", "--json"]).output)
    assert info["lora_learning_rate"] == pytest.approx(5e-4 * (2000 / 4096) ** 0.0775)
    assert info["on_policy_lora_learning_rate"] == pytest.approx(0.2 * info["lora_learning_rate"])


def test_on_policy_recipes_take_a_fifth_of_the_supervised_rate() -> None:
    model = "meta-llama/Llama-3.2-1B-Instruct"
    supervised = learning_rate_default(model)
    # tinker-cookbook's arithmetic RL on Llama-3.2-1B runs at 1e-4
    assert default_learning_rate(model, "local", 32, on_policy=True) == pytest.approx(supervised.lora / 5) == pytest.approx(1e-4, rel=0.05)
    assert default_learning_rate(model, "local", 0, on_policy=True) == pytest.approx(supervised.full / 5)
    assert default_learning_rate(model, "local", 32) == pytest.approx(supervised.lora)
    out = runner.invoke(app, ["models", "info", model])
    assert "9.82e-05 LoRA, 9.82e-06 full fine-tuning (train rl, on-policy distill: x0.2)" in out.output


def test_models_trained_from_scratch_keep_their_rate_on_policy_too() -> None:
    assert default_learning_rate("random:tiny:meta-llama/Llama-3.2-1B-Instruct", "local", 32, on_policy=True) == 1e-2


@pytest.mark.parametrize(
    "words, on_policy",
    [
        (["sl"], False),
        (["rl", "--env", "arithmetic"], True),
        (["distill", "--teacher", "meta-llama/Llama-3.2-3B-Instruct"], True),
        (["distill", "--teacher", "meta-llama/Llama-3.2-3B-Instruct", "mode=off_policy"], False),
    ],
)
def test_each_recipe_resolves_the_rate_of_its_kind(words: list[str], on_policy: bool, tmp_path: Path) -> None:
    model = "meta-llama/Llama-3.2-1B-Instruct"
    out = runner.invoke(app, ["train", *words, "--model", model, "--log-dir", str(tmp_path / "run"), "--dry-run"])
    assert out.exit_code == 0, out.output
    resolved = json.loads(out.output[out.output.index("{") :])
    assert resolved["learning_rate"] == pytest.approx(default_learning_rate(model, "local", 32, on_policy=on_policy))
