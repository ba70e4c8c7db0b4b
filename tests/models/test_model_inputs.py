"""`--model` takes a .gguf file and a model folder; `models info` describes
them from their files; the renderer defaults to the model's own chat template
when no family matches; bad inputs are one line, with nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.models import resolve_model_and_renderer
from cookbook_cli.models.gguf_folder import converted_folder


def cookbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cookbook_cli", *args], capture_output=True, text=True, env=dict(os.environ), timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "What is 2+2?"}]}) + "\n")
    return path


# -- models info --------------------------------------------------------------------------------
def test_models_info_on_a_gguf_reads_its_metadata_without_converting(tmp_path: Path, write_gguf, tiny_source, cookbook_cache: Path) -> None:  # type: ignore[no-untyped-def]
    gguf_file = write_gguf(tmp_path / "tiny.gguf")
    proc = cookbook("models", "info", str(gguf_file))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in ("architecture: llama (GGUF)", f"vocabulary: {len(tiny_source.tokens)}", "context:    256 tokens",
                 "chat template: yes", "renderer:   hf_template (the model's own chat template; no family matched",
                 "family:     none matches", "learning rate: 0.0002 LoRA"):
        assert line in out, out
    assert f"parameters: {sum(p.numel() for p in tiny_source.model.parameters())}\n" in out  # tied: counted once
    assert not cookbook_cache.exists() or not any(cookbook_cache.rglob("*.safetensors"))


def test_models_info_on_a_folder_counts_parameters_from_the_safetensors_headers(tmp_path: Path, write_gguf, tiny_source) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "my-model"
    shutil.copytree(converted_folder(write_gguf(tmp_path / "tiny.gguf")), folder)
    proc = cookbook("models", "info", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    parameters = sum(p.numel() for p in tiny_source.model.parameters())  # tied: the embedding counts once
    assert (info["architecture"], info["parameters"], info["vocabulary"], info["context_length"]) == ("LlamaForCausalLM", parameters, len(tiny_source.tokens), 256)
    assert (info["chat_template"], info["renderer"], info["family"], info["hidden_size"]) == (True, "hf_template", None, 64)
    assert info["source"] == "a model folder" and info["learning_rate_rule"].startswith("generic default")


def test_a_folder_named_after_a_family_gets_the_familys_renderer_and_rule(tmp_path: Path, write_gguf) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "SmolLM2-tiny-instruct"
    shutil.copytree(converted_folder(write_gguf(tmp_path / "tiny.gguf")), folder)
    info = json.loads(cookbook("models", "info", str(folder), "--json").stdout)
    assert (info["family"], info["renderer"]) == ("smollm2", "smollm2")
    assert "(family smollm2, hidden size 64)" in info["learning_rate_rule"]


# -- the renderer a model gets by default ---------------------------------------------------------
def test_a_model_with_its_own_chat_template_gets_hf_template_said_once(tmp_path: Path, write_gguf, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    gguf_file = str(write_gguf(tmp_path / "tiny.gguf"))
    assert resolve_model_and_renderer("local", gguf_file, None) == (gguf_file, "hf_template")
    assert resolve_model_and_renderer("local", gguf_file, None) == (gguf_file, "hf_template")
    err = capsys.readouterr().err
    assert err == f"Renderer: hf_template (the model's own chat template; no family matched {gguf_file})\n"
    assert resolve_model_and_renderer("local", gguf_file, "role_colon") == (gguf_file, "role_colon")


def test_a_model_with_neither_family_nor_chat_template_needs_renderer(tmp_path: Path, write_gguf, prompts: Path) -> None:  # type: ignore[no-untyped-def]
    gguf_file = str(write_gguf(tmp_path / "plain.gguf", chat_template=False))
    with pytest.raises(CookbookError, match="matches no model family and ships no chat template.*pass --renderer"):
        resolve_model_and_renderer("local", gguf_file, None)
    one_line_error(cookbook("sample", "--model", gguf_file, "-p", str(prompts), "-o", str(tmp_path / "out.jsonl")), "pass --renderer")
    assert not (tmp_path / "out.jsonl").exists()


def test_sample_on_a_gguf_converts_it_and_answers_with_its_own_template(tmp_path: Path, write_gguf, prompts: Path) -> None:  # type: ignore[no-untyped-def]
    gguf_file = str(write_gguf(tmp_path / "tiny.gguf"))
    out = tmp_path / "out.jsonl"
    proc = cookbook("sample", "--model", gguf_file, "-p", str(prompts), "-o", str(out), "--max-tokens", "3", "-t", "0")
    assert proc.returncode == 0, proc.stderr
    assert "Renderer: hf_template (the model's own chat template; no family matched" in proc.stderr
    row = json.loads(out.read_text())
    assert row["messages"][-1]["role"] == "assistant" and row["sample"]["tokens"] >= 1


@pytest.mark.parametrize("recipe", [("sl",), ("dpo",), ("rl", "--env", "arithmetic"), ("distill", "--teacher", "TEACHER")])
def test_every_recipe_takes_a_gguf_and_its_chat_template(tmp_path: Path, write_gguf, recipe: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    gguf_file = str(write_gguf(tmp_path / "tiny.gguf"))
    args = [gguf_file if a == "TEACHER" else a for a in recipe]
    proc = cookbook("train", *args, "--model", gguf_file, "--log-dir", str(tmp_path / "run"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "Renderer: hf_template (the model's own chat template; no family matched" in proc.stderr
    config = json.loads(proc.stdout)
    assert (config["model"], config["renderer"]) == (gguf_file, "hf_template")


# -- bad inputs: one line, nothing left in the cache ------------------------------------------------
def _no_conversion_left(cache: Path) -> None:
    assert not cache.exists() or list((cache / "models").iterdir()) == []


def test_a_damaged_gguf_is_one_line(tmp_path: Path, write_gguf, prompts: Path, cookbook_cache: Path) -> None:  # type: ignore[no-untyped-def]
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(write_gguf(tmp_path / "tiny.gguf").read_bytes()[:5000])
    for args in (("models", "info", str(damaged)), ("sample", "--model", str(damaged), "-p", str(prompts), "-o", str(tmp_path / "o.jsonl"))):
        one_line_error(cookbook(*args), f"{str(damaged)!r} is not a readable GGUF file")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf at all" * 100)
    one_line_error(cookbook("models", "info", str(garbage)), "is not a readable GGUF file")
    _no_conversion_left(cookbook_cache)
    assert not (tmp_path / "o.jsonl").exists()


def test_an_unsupported_architecture_is_one_line_naming_the_supported_ones(tmp_path: Path, write_gguf, prompts: Path, cookbook_cache: Path) -> None:  # type: ignore[no-untyped-def]
    other = write_gguf(tmp_path / "other.gguf", architecture="falcon")
    one_line_error(
        cookbook("sample", "--model", str(other), "-p", str(prompts), "-o", str(tmp_path / "o.jsonl"), "--renderer", "role_colon"),
        "holds a 'falcon' model; cookbook converts GGUF files of these architectures: llama",
    )
    _no_conversion_left(cookbook_cache)


def test_a_gguf_or_folder_without_a_tokenizer_is_one_line(tmp_path: Path, write_gguf, prompts: Path, cookbook_cache: Path) -> None:  # type: ignore[no-untyped-def]
    bare = write_gguf(tmp_path / "bare.gguf", tokenizer=False)
    one_line_error(
        cookbook("sample", "--model", str(bare), "-p", str(prompts), "-o", str(tmp_path / "o.jsonl"), "--renderer", "role_colon"),
        "has no tokenizer",
    )
    _no_conversion_left(cookbook_cache)
    folder = tmp_path / "no-tokenizer"
    shutil.copytree(converted_folder(write_gguf(tmp_path / "tiny.gguf")), folder)
    (folder / "tokenizer.json").unlink()
    one_line_error(cookbook("sample", "--model", str(folder), "-p", str(prompts), "-o", str(tmp_path / "o.jsonl")), "has no tokenizer.json")
    one_line_error(cookbook("sample", "--model", str(tmp_path / "missing.gguf"), "-p", str(prompts), "-o", str(tmp_path / "o.jsonl")), "does not exist")
    assert not (tmp_path / "o.jsonl").exists()
