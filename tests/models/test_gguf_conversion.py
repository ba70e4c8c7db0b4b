"""A .gguf file converted to a Hugging Face folder: the model computes what its
source computed, the tokenizer encodes as its source did, the chat template and
rope settings survive, the folder carries what transformers 4.45 reads, and the
conversion is cached by content digest and written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cookbook_cli.models import resolve_model_input
from cookbook_cli.models.gguf_folder import cache_root, converted_folder

TEXTS = [
    "The capital of France is Paris.",
    "What is 12 times 12? It is 144, not 1440.",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "Café 東京 🙂 tabs\tand  spaces\n\nnew lines",
]


def test_the_converted_model_computes_what_its_source_computed(tmp_path: Path, write_gguf, tiny_source) -> None:  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForCausalLM

    folder = resolve_model_input(str(write_gguf(tmp_path / "tiny.gguf"))).folder
    assert folder is not None and folder.parent == cache_root()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([tiny_source.tokenizer.encode(TEXTS[1]).ids])
    with torch.no_grad():
        expected = tiny_source.model(ids).logits
        got = model(ids).logits
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert model.config.tie_word_embeddings and model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_the_tokenizer_encodes_as_its_source_did(tmp_path: Path, write_gguf, tiny_source) -> None:  # type: ignore[no-untyped-def]
    from cookbook_cli.tokenizers import get_tokenizer

    folder = converted_folder(write_gguf(tmp_path / "tiny.gguf"))
    tokenizer = get_tokenizer(str(folder))
    for text in TEXTS:
        assert tokenizer.encode(text) == tiny_source.tokenizer.encode(text).ids, text
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode("2024") == [tokenizer.token_to_id(d) for d in "2024"]  # SmolLM2 splits digits


def test_config_and_tokenizer_config_carry_what_transformers_4_45_reads(tmp_path: Path, write_gguf) -> None:  # type: ignore[no-untyped-def]
    from tiny_gguf import CHAT_TEMPLATE, ROPE_THETA

    folder = converted_folder(write_gguf(tmp_path / "tiny.gguf"))
    config = json.loads((folder / "config.json").read_text())
    # 4.x defaults rope_theta to 10000 and reads no rope_parameters: it must be explicit
    assert config["rope_theta"] == ROPE_THETA and config["rope_scaling"] is None
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert config["tie_word_embeddings"] is True and config["torch_dtype"] == "float32"
    assert (config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (64, 4, 2, 16)
    assert (config["max_position_embeddings"], config["rms_norm_eps"]) == (256, 1e-5)
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 2)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # 4.45 knows no TokenizersBackend
    assert tokenizer_config["chat_template"] == CHAT_TEMPLATE
    assert (tokenizer_config["bos_token"], tokenizer_config["eos_token"], tokenizer_config["pad_token"]) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert json.loads((folder / "generation_config.json").read_text()) == {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    special = {t["content"] for t in json.loads((folder / "tokenizer.json").read_text())["added_tokens"] if t["special"]}
    assert special == {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}


def test_transformers_reads_the_rope_theta_and_the_chat_template(tmp_path: Path, write_gguf) -> None:  # type: ignore[no-untyped-def]
    from tiny_gguf import ROPE_THETA
    from transformers import AutoConfig, AutoTokenizer

    folder = converted_folder(write_gguf(tmp_path / "tiny.gguf"))
    config = AutoConfig.from_pretrained(folder)
    theta = getattr(config, "rope_theta", None) or (getattr(config, "rope_parameters", None) or {}).get("rope_theta")
    assert theta == ROPE_THETA
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_a_second_use_reuses_the_conversion_and_a_changed_file_converts_again(tmp_path: Path, write_gguf, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from cookbook_cli.models import gguf_folder

    gguf_file = write_gguf(tmp_path / "tiny.gguf")
    first = converted_folder(gguf_file)
    real = gguf_folder.write_folder
    monkeypatch.setattr(gguf_folder, "write_folder", lambda *a: pytest.fail("converted twice"))
    assert converted_folder(gguf_file) == first
    assert resolve_model_input(str(gguf_file)).folder == first
    monkeypatch.setattr(gguf_folder, "write_folder", real)
    write_gguf(gguf_file, chat_template=False)
    second = converted_folder(gguf_file)
    assert second != first and "chat_template" not in json.loads((second / "tokenizer_config.json").read_text())
    assert sorted(p.name for p in cache_root().iterdir()) == sorted([first.name, second.name])


def test_an_interrupted_conversion_leaves_nothing_behind(tmp_path: Path, write_gguf, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from cookbook_cli.models import gguf_folder

    gguf_file = write_gguf(tmp_path / "tiny.gguf")
    real = gguf_folder.write_folder

    def interrupted(source: Path, folder: Path) -> None:
        (folder / "config.json").write_text("{}")  # half-written
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_folder, "write_folder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        converted_folder(gguf_file)
    assert list(cache_root().iterdir()) == []
    monkeypatch.setattr(gguf_folder, "write_folder", real)
    assert (converted_folder(gguf_file) / "model.safetensors").is_file()


def test_a_killed_conversions_temporary_folder_is_removed(tmp_path: Path, write_gguf) -> None:  # type: ignore[no-untyped-def]
    from cookbook_cli.models.gguf_folder import cache_folder_for

    gguf_file = write_gguf(tmp_path / "tiny.gguf")
    final = cache_folder_for(gguf_file)
    stale = final.parent / f".{final.name}.999999999.abc"  # no such process
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    converted_folder(gguf_file)
    assert not stale.exists() and sorted(p.name for p in cache_root().iterdir()) == [final.name]
