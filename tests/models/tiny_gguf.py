"""Small GGUF files written here with the `gguf` package: a tiny Llama (two
layers, a non-default rope_theta, tied embeddings) with a byte-level BPE
tokenizer trained on a few sentences (SmolLM2's pre-tokenizer: single digits)
and a ChatML chat template, beside the Hugging Face model and tokenizer they
were written from, so a conversion can be compared with its source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ROPE_THETA = 50000.0
HEADS, KV_HEADS = 4, 2
CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "What is 2+2? It is 4. What is 12 times 12? It is 144.",
    "Hello! How are you today? I am fine, thank you.",
    "def add(a, b):\n    return a + b\n",
    "Café, naïve, façade: accents stay bytes. 東京 too.",
] * 20


@dataclass
class TinySource:
    tokenizer: Any  # tokenizers.Tokenizer
    model: Any  # transformers LlamaForCausalLM
    tokens: list[str]
    merges: list[str]


def build_tiny_source() -> TinySource:
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    config = LlamaConfig(
        vocab_size=len(tokens), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=256,
        rope_theta=ROPE_THETA, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    return TinySource(tok, model, tokens, merges)


def _permute(weights: Any, heads: int) -> Any:
    """llama.cpp's rope permutation of q/k rows (what its converter writes)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def _gguf_tensors(model: Any) -> dict[str, Any]:
    out = {}
    for name, param in model.state_dict().items():
        values = param.detach().float().numpy()
        if name == "model.embed_tokens.weight":
            out["token_embd.weight"] = values
        elif name == "model.norm.weight":
            out["output_norm.weight"] = values
        elif name.startswith("model.layers."):
            _, _, layer, rest = name.split(".", 3)
            kind = _NAMES[rest.removesuffix(".weight")]
            if kind == "attn_q":
                values = _permute(values, HEADS)
            elif kind == "attn_k":
                values = _permute(values, KV_HEADS)
            out[f"blk.{layer}.{kind}.weight"] = values
    return out  # lm_head is tied: no output.weight


def write_tiny_gguf(
    tiny_source: TinySource, path: Path, architecture: str = "llama", tokenizer: bool = True, chat_template: bool = True
) -> Path:
    """Write the tiny model as a GGUF file at `path` (llama.cpp's names and q/k layout)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("Tiny Llama")
    writer.add_block_count(2)
    writer.add_context_length(256)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(64 // HEADS)
    if tokenizer:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("smollm")
        writer.add_token_list(tiny_source.tokens)
        writer.add_token_types([gguf.TokenType.CONTROL if t in SPECIAL else gguf.TokenType.NORMAL for t in tiny_source.tokens])
        writer.add_token_merges(tiny_source.merges)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_pad_token_id(2)
    if chat_template:
        writer.add_chat_template(CHAT_TEMPLATE)
    for name, values in _gguf_tensors(tiny_source.model).items():
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
