"""`cookbook export`: merged LoRA, PEFT adapter and full fine-tuning folders load
in transformers/peft and give the engine's logprobs; bad input in one line."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app
from cookbook_cli.export import export_checkpoint

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi! How can I help?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue, like the sky."}],
]


def engine_logprobs(run, checkpoint=None):
    from tinker.types import ModelInput

    from cookbook_cli.sources import open_sampler, renderer_for, resolve_source

    source = resolve_source(run=run, checkpoint=checkpoint)
    renderer = renderer_for(source)
    tokens = [renderer.build_supervised_tokens(c)[0] for c in CONVERSATIONS]
    with open_sampler(source) as client:
        return tokens, [client.compute_logprobs(ModelInput.from_ints(t)).result()[1:] for t in tokens]


def hf_logprobs(model, tokens):
    out = []
    for t in tokens:
        ids = torch.tensor([t])
        with torch.no_grad():
            logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
        out.append(logp[:-1].gather(-1, ids[0, 1:, None]).squeeze(-1).tolist())
    return out


def assert_close(a, b, tol=1e-4):
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        assert max(abs(p - q) for p, q in zip(x, y)) < tol


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_merged_lora_loads_in_transformers_with_the_engines_logprobs(lora_run, tmp_path):
    out = tmp_path / "merged"
    r = cli("export", str(lora_run), "--out", str(out), "--merge", "--max-shard-size", "300KB")
    assert r.exit_code == 0, r.output
    assert "merged model folder" in r.output and "chat template written" in r.output
    assert len(list(out.glob("model-*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(out))
    assert model.dtype == torch.float32
    assert model.config.tie_word_embeddings is False  # the adapted lm_head no longer equals the embedding
    tokens, expected = engine_logprobs(lora_run)
    assert_close(hf_logprobs(model, tokens), expected)
    meta = json.loads((out / "export.json").read_text())
    assert meta["kind"] == "merged" and meta["source"]["checkpoint"] == "final-000002" and meta["untied_embeddings"]
    # the shipped chat template prompts exactly as the renderer does
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    text = tok.apply_chat_template(CONVERSATIONS[1][:2], tokenize=False, add_generation_prompt=True)
    from cookbook_cli.sources import renderer_for, resolve_source

    renderer = renderer_for(resolve_source(run=lora_run))
    assert tok(text, add_special_tokens=False)["input_ids"] == renderer.build_generation_tokens(CONVERSATIONS[1][:2])


def test_peft_adapter_folder_gives_the_same_logprobs(lora_run, tmp_path):
    peft = pytest.importorskip("peft")
    out = tmp_path / "adapter"
    result = export_checkpoint(lora_run, out)
    assert result.kind == "peft"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["base_model_name_or_path"] is None  # a random base: written in base/
    base = transformers.AutoModelForCausalLM.from_pretrained(str(out / "base"))
    model = peft.PeftModel.from_pretrained(base, str(out))
    tokens, expected = engine_logprobs(lora_run)
    assert_close(hf_logprobs(model, tokens), expected)
    assert "lm_head" in (out / "README.md").read_text()


def test_a_training_state_checkpoint_exports_too(lora_run, tmp_path):
    out = tmp_path / "step1"
    export_checkpoint(lora_run / "weights" / "step-000001", out, merge=True)
    tokens, expected = engine_logprobs(lora_run, "step-000001")
    assert_close(hf_logprobs(transformers.AutoModelForCausalLM.from_pretrained(str(out)), tokens), expected)
    assert not (lora_run / "sampler_weights" / "export").exists()  # nothing written into the run


def test_full_fine_tuning_exports_the_model_folder(full_run, tmp_path):
    out = tmp_path / "full"
    result = export_checkpoint(full_run, out, merge=True)
    assert result.kind == "full" and any("full fine-tuning" in n for n in result.notes)
    assert not (out / "meta.json").exists()
    tokens, expected = engine_logprobs(full_run)
    assert_close(hf_logprobs(transformers.AutoModelForCausalLM.from_pretrained(str(out)), tokens), expected)


def test_a_template_that_does_not_match_the_renderer_is_left_out(lora_run, tmp_path):
    out = tmp_path / "rc"
    r = cli("export", str(lora_run), "--out", str(out), "--renderer", "role_colon")
    assert r.exit_code == 0, r.output
    assert "no chat template written" in r.output and "role_colon" in r.output
    assert not (out / "chat_template.jinja").exists() and not (out / "base" / "chat_template.jinja").exists()
    assert json.loads((out / "export.json").read_text())["chat_template"] is False
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    r = cli("export", str(lora_run), "--out", str(tmp_path / "x"), "--chat-template", str(template))
    assert r.exit_code == 1 and "--chat-template" in r.output and "does not reproduce" in r.output
    assert not (tmp_path / "x").exists()


def test_bad_input(lora_run, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    r = cli("export", str(lora_run), "--out", str(taken))
    assert r.exit_code == 1 and "already exists" in r.output
    r = cli("export", str(lora_run), "--out", str(tmp_path / "a"), "--model", "random:tiny:llama3")
    assert r.exit_code == 1 and "trained base model" in r.output
    r = cli("export", str(tmp_path / "nothing"), "--out", str(tmp_path / "b"))
    assert r.exit_code == 1 and "does not exist" in r.output
    # a run whose config names another base model than its checkpoint was trained from
    moved = tmp_path / "moved"
    shutil.copytree(lora_run, moved)
    config = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**config, "model": "random:small:" + config["model"].split(":", 2)[2]}))
    r = cli("export", str(moved), "--out", str(tmp_path / "c"), "--merge")
    assert r.exit_code == 1 and "another base model" in r.output and not (tmp_path / "c").exists()
    # an engine that keeps its weights on a service
    remote = tmp_path / "remote"
    shutil.copytree(lora_run, remote)
    (remote / "config.json").write_text(json.dumps({**config, "engine": "tinker"}))
    r = cli("export", str(remote), "--out", str(tmp_path / "d"))
    assert r.exit_code == 1 and "engine 'tinker'" in r.output
