"""tokenizer.json and tokenizer_config.json from a GGUF's tokenizer metadata.

GGUF keeps a byte-level BPE tokenizer ("gpt2") as its token list, token types
and merges, and names the pre-tokenizer (`tokenizer.ggml.pre`) instead of
storing it; the ones cookbook knows are spelt out here as the Hugging Face
tokenizers that use them write them. Control tokens become special added
tokens. The config uses `PreTrainedTokenizerFast`, which every transformers
version since 4.x knows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError

_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_LEVEL_NO_REGEX = {**_BYTE_LEVEL, "use_regex": False}
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def _split_then_bytes(pattern: str) -> dict[str, Any]:
    split = {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}
    return {"type": "Sequence", "pretokenizers": [split, _BYTE_LEVEL_NO_REGEX]}


#: `tokenizer.ggml.pre` -> the Hugging Face pre-tokenizer it stands for
PRE_TOKENIZERS: dict[str, dict[str, Any]] = {
    "default": _BYTE_LEVEL,
    "gpt2": _BYTE_LEVEL,
    "gpt-2": _BYTE_LEVEL,
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
    "starcoder": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
    "llama-bpe": _split_then_bytes(_LLAMA3_SPLIT),
    "llama3": _split_then_bytes(_LLAMA3_SPLIT),
    "qwen2": _split_then_bytes(_QWEN2_SPLIT),
}
CONTROL_TOKEN = 3  # gguf.TokenType.CONTROL


def _token(meta: dict[str, Any], key: str, tokens: list[str]) -> str | None:
    index = meta.get(f"tokenizer.ggml.{key}")
    return tokens[int(index)] if isinstance(index, int) and 0 <= index < len(tokens) else None


def tokenizer_files(meta: dict[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    """(tokenizer.json text, tokenizer_config.json content) of the GGUF's tokenizer."""
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise CookbookError(f"{str(path)!r} has no tokenizer (no tokenizer.ggml.tokens); cookbook needs one to train and sample")
    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise CookbookError(
            f"{str(path)!r} has a {kind!r} tokenizer; cookbook converts byte-level BPE tokenizers ('gpt2') only"
        )
    pre_name = meta.get("tokenizer.ggml.pre") or "default"
    if pre_name not in PRE_TOKENIZERS:
        raise CookbookError(
            f"{str(path)!r} uses pre-tokenizer {pre_name!r}; cookbook knows: {', '.join(sorted(PRE_TOKENIZERS))}"
        )
    merges = meta.get("tokenizer.ggml.merges") or []
    types = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, (t, kind_of) in enumerate(zip(tokens, types, strict=False))
        if kind_of == CONTROL_TOKEN
    ]
    bos = _token(meta, "bos_token_id", tokens)
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False)) and bos is not None
    byte_post = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    post: dict[str, Any] = byte_post
    if add_bos:
        bos_id = int(meta["tokenizer.ggml.bos_token_id"])
        template = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
        }
        post = {"type": "Sequence", "processors": [byte_post, template]}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[pre_name],
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": [str(m) for m in merges],
        },
    }
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
    }
    for key, gguf_key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("pad_token", "padding_token_id"), ("unk_token", "unknown_token_id")):
        value = _token(meta, gguf_key, tokens)
        if value is not None:
            config[key] = value
    template = meta.get("tokenizer.chat_template")
    if isinstance(template, str) and template:
        config["chat_template"] = template
    return json.dumps(tokenizer, ensure_ascii=False), config
