"""A new user's first minutes (issue 24), through the CLI: export makes the
parents of --out; a damaged adapter_config.json inside a run is one line from
sample and export; every list command fits 80 columns and has --json; eval's
base-model result folders never collide; `eval nll` without path= scores a
run's held-out rows; `runs list` shows each recipe's main metric; transformers'
loading bar stays out of the output; `--prompts sample` is shipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

pytest.importorskip("torch")

TINY = ["--model", "random:tiny:llama3"]


def cli(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), input=input)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    run = tmp_path_factory.mktemp("runs") / "sl"
    result = cli("train", "sl", *TINY, "--max-steps", "2", "--batch-size", "4", "--log-dir", str(run))
    assert result.exit_code == 0, result.output
    return run


def test_export_makes_the_parents_of_out(lora_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported" / "deeper" / "x"
    result = cli("export", str(lora_run), "--out", str(out), "--merge", "--max-shard-size", "2MB")
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file() and len(list(out.glob("*.safetensors"))) > 1  # 2MB shards of a tiny model


@pytest.mark.parametrize("config", [{"r": "x"}, {"peft_type": "LORA", "r": 0, "lora_alpha": 32, "target_modules": ["q_proj"]},
                                    "not json", {"peft_type": "LORA", "r": 8, "lora_alpha": "big", "target_modules": ["q_proj"]}])
@pytest.mark.parametrize("command", ["sample", "export"])
def test_a_damaged_adapter_config_is_one_line(lora_run: Path, tmp_path: Path, config: object, command: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(lora_run, run)
    for adapter in run.glob("sampler_weights/*/adapter_config.json"):
        adapter.write_text(config if isinstance(config, str) else json.dumps(config), encoding="utf-8")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n', encoding="utf-8")
    args = {"sample": ["sample", "--run", str(run), "--prompts", str(prompts), "--out", str(tmp_path / "s.jsonl")],
            "export": ["export", str(run), "--out", str(tmp_path / "x"), "--merge"]}[command]
    result = cli(*args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "adapter_config.json" in line and "Traceback" not in result.output
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "x").exists()


LISTS = ["evaluators", "runs", "envs", "loggers", "losses", "models", "renderers", "datasets", "engines", "plugins"]


@pytest.mark.parametrize("group", LISTS)
def test_every_list_fits_80_columns_and_has_json(group: str, lora_run: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "80")
    extra = [str(lora_run.parent)] if group == "runs" else []
    table = cli(group, "list", *extra)
    assert table.exit_code == 0, table.output
    widest = max(len(line) for line in table.stdout.splitlines())
    assert widest <= 80, table.stdout
    listed = cli(group, "list", *extra, "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)


def test_eval_folders_of_two_models_of_one_shape_differ(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cookbook_cli.evaluation.runner import model_results_name
    from cookbook_cli.scaffold import tiny_tokenizer_path

    monkeypatch.chdir(tmp_path)
    names = {model_results_name("local", "random:tiny:llama3"), model_results_name("local", f"random:tiny:{tiny_tokenizer_path()}"),
             model_results_name("tinker", "random:tiny:llama3")}
    (tmp_path / "a" / "model").mkdir(parents=True)
    (tmp_path / "b" / "model").mkdir(parents=True)
    names |= {model_results_name("local", "a/model"), model_results_name("local", "b/model")}
    assert len(names) == 5
    tag = model_results_name("local", "a/model").rsplit("-", 1)[1]
    assert model_results_name("local", str(tmp_path / "a" / "model")).endswith(f"-model-{tag}")  # one folder, however named
    assert model_results_name("local", "random:tiny:llama3").startswith("random-tiny-llama3-")
    result = cli("eval", *TINY, "arithmetic", "max_examples=2")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "eval").iterdir()
    assert folder.name == model_results_name("local", "random:tiny:llama3")


def test_eval_nll_without_path_scores_the_runs_held_out_rows(lora_run: Path, tmp_path: Path) -> None:
    from cookbook_cli.data.builders import ConversationsBuilder

    result = cli("eval", "--run", str(lora_run), "--out", str(tmp_path / "ev"), "nll", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "ev" / "nll" / "result.json").read_text())
    _, test = ConversationsBuilder().load(0)
    assert record["examples"] == len(test) and 0 < len(test) < 100
    final = [r for r in map(json.loads, (lora_run / "metrics.jsonl").read_text().splitlines()) if "test_nll" in r][-1]
    assert abs(record["metrics"]["nll"] - final["test_nll"]) < 1e-3 * final["test_nll"]  # the number training logged


def test_runs_list_shows_each_recipes_main_metric(lora_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(lora_run, runs / "sl")
    assert cli("train", "dpo", *TINY, "--max-steps", "1", "--batch-size", "2", "--log-dir", str(runs / "dpo")).exit_code == 0
    assert cli("train", "distill", *TINY, "--teacher", "random:tiny:llama3", "--prompts", "sample", "--max-steps", "1",
               "--groups-per-batch", "2", "--group-size", "2", "max_tokens=4", "--log-dir", str(runs / "distill")).exit_code == 0
    rows = {Path(r["path"]).name: r for r in json.loads(cli("runs", "list", str(runs), "--json").stdout)}
    assert set(rows["sl"]["main"]) == {"loss", "test NLL"}
    assert set(rows["dpo"]["main"]) == {"accuracy", "margin"}
    assert set(rows["distill"]["main"]) == {"teacher KL"}
    table = cli("runs", "list", str(runs)).stdout
    assert "teacher KL" in table and "accuracy" in table and "reward 0" not in table


def test_no_loading_bar_and_the_shipped_prompts(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A model folder (as a user's own model is) loads without transformers' bar, in sample, eval and chat."""
    from cookbook_cli.engines.local.models import build_random_model
    from cookbook_cli.scaffold import tiny_tokenizer_path

    folder = tmp_path / "model"
    model, _ = build_random_model(f"random:tiny:{tiny_tokenizer_path()}", None)
    model.save_pretrained(str(folder))
    for f in tiny_tokenizer_path().iterdir():
        shutil.copy(f, folder)
    monkeypatch.chdir(tmp_path)
    model_args = ["--model", str(folder), "--renderer", "hf_template"]
    outputs = [
        cli("sample", *model_args, "--prompts", "sample", "--out", "s.jsonl", "--max-tokens", "2"),
        cli("eval", *model_args, "arithmetic", "max_examples=2"),
        cli("chat", *model_args, "--max-tokens", "2", input="hello\n"),
    ]
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert "Loading weights" not in result.output and "%|" not in result.output, result.output
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 24  # every shipped prompt answered
