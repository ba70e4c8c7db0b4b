"""A `.gguf` file as a Hugging Face model folder, converted once and cached.

The folder is written here from the GGUF's own metadata (read by
`gguf_header`) and tensors (read and dequantized with the `gguf` package), not
by transformers' GGUF loader, so that it loads the
same under every transformers version cookbook allows (>= 4.45):

- config.json: `LlamaForCausalLM` with explicit `rope_theta` (4.x otherwise
  assumes 10000), rope scaling when the file has one, tied embeddings when the
  file has no `output.weight`;
- tokenizer.json built from the GGUF vocabulary and merges (byte-level BPE),
  with the pre-tokenizer the GGUF's `tokenizer.ggml.pre` names;
  tokenizer_config.json with `PreTrainedTokenizerFast`, the special tokens and
  the chat template; generation_config.json with bos/eos/pad;
- model.safetensors: quantized tensors dequantized to float32; a file with no
  quantized tensor keeps its float type (bfloat16 becomes float32: numpy has none).
  Llama's q/k projections are stored permuted for llama.cpp's rope and are
  permuted back.

The cache folder is `<cache dir>/models/<stem>-<sha256[:16]>-v<version>`,
written to a temporary folder and renamed into place, so an interrupted
conversion leaves nothing that blocks the next try.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError, first_line
from cookbook_cli.models.gguf_tokenizer import tokenizer_files

CONVERSION_VERSION = 1
SUPPORTED_ARCHITECTURES = ("llama",)

# GGUF tensor name (after "blk.N.") -> Hugging Face Llama parameter name
_LAYER_TENSORS = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_TENSORS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def cache_root() -> Path:
    from cookbook_cli.tokenizers.llama3_offline import cache_dir

    return cache_dir() / "models"


@functools.lru_cache(maxsize=16)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of the file's content (memoised while its size and mtime stay the same)."""
    st = path.stat()
    return _digest_of(str(path.resolve()), st.st_size, st.st_mtime_ns)


def cache_folder_for(gguf: Path) -> Path:
    return cache_root() / f"{gguf.stem}-{file_digest(gguf)[:16]}-v{CONVERSION_VERSION}"


def cached_folder(gguf: Path) -> Path | None:
    """The finished conversion of `gguf`, if one is cached."""
    folder = cache_folder_for(gguf)
    return folder if (folder / "config.json").is_file() else None


def converted_folder(gguf: Path) -> Path:
    """The model folder of `gguf`: the cached one, else converted now."""
    final = cache_folder_for(gguf)
    if (final / "config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    try:
        write_folder(gguf, tmp)
        tmp.chmod(0o755)  # mkdtemp's folder is private; the cache is not
        try:
            tmp.rename(final)
        except OSError:  # another process finished the same conversion first
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _remove_abandoned(final: Path) -> None:
    """Temporary folders of conversions whose process is gone (killed mid-way)."""
    for tmp in final.parent.glob(f".{final.name}.*"):
        try:
            pid = int(tmp.name[len(final.name) + 2 :].split(".", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, OSError):
            continue


# -- reading ---------------------------------------------------------------------------------


def open_gguf(path: Path) -> Any:
    """A `gguf.GGUFReader` over `path`; a file that is not GGUF is one line."""
    try:
        import gguf
    except ImportError:
        raise CookbookError("reading .gguf files needs the gguf package: pip install 'cookbook-cli[local]'") from None
    try:
        return gguf.GGUFReader(str(path), "r")
    except Exception as e:  # noqa: BLE001 - any parse failure of a damaged file is one line
        raise CookbookError(f"{str(path)!r} is not a readable GGUF file ({first_line(e)})") from None


def architecture_of(meta: dict[str, Any], path: Path) -> str:
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise CookbookError(f"{str(path)!r} names no general.architecture; is it a model GGUF?")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise CookbookError(
            f"{str(path)!r} holds a {arch!r} model; cookbook converts GGUF files of these architectures: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)} (Llama, SmolLM, Mistral 7B); for others use the model's Hugging Face folder"
        )
    return arch


def llama_config(meta: dict[str, Any], path: Path, vocab_size: int, tied: bool, dtype: str) -> dict[str, Any]:
    """config.json for a llama GGUF, with every setting transformers 4.45 would otherwise default."""
    arch = architecture_of(meta, path)

    def need(key: str) -> Any:
        value = meta.get(f"{arch}.{key}")
        if value is None:
            raise CookbookError(f"{str(path)!r} lacks {arch}.{key}; the file is incomplete")
        return value

    heads = int(need("attention.head_count"))
    hidden = int(need("embedding_length"))
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(need("feed_forward_length")),
        "num_hidden_layers": int(need("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(meta.get(f"{arch}.attention.head_count_kv", heads)),
        "head_dim": int(meta.get(f"{arch}.rope.dimension_count", hidden // heads)),
        "max_position_embeddings": int(need("context_length")),
        "rms_norm_eps": _float32(meta.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": _float32(meta.get(f"{arch}.rope.freq_base", 10000.0)),
        "rope_scaling": _rope_scaling(meta, arch, path),
        "vocab_size": vocab_size,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": dtype,
    }
    for key, gguf_key in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("pad_token_id", "padding_token_id")):
        value = meta.get(f"tokenizer.ggml.{gguf_key}")
        config[key] = int(value) if value is not None else None
    return config


def _float32(value: Any) -> float:
    """A GGUF float32 as the decimal it was written from (1e-05, not 9.999999747378752e-06)."""
    return float(f"{float(value):.7g}")


def _rope_scaling(meta: dict[str, Any], arch: str, path: Path) -> dict[str, Any] | None:
    kind = meta.get(f"{arch}.rope.scaling.type")
    if kind in (None, "none"):
        return None
    if kind not in ("linear", "yarn"):
        raise CookbookError(f"{str(path)!r} uses rope scaling {kind!r}; cookbook converts linear and yarn scaling only")
    scaling: dict[str, Any] = {"rope_type": kind, "type": kind, "factor": float(meta.get(f"{arch}.rope.scaling.factor", 1.0))}
    original = meta.get(f"{arch}.rope.scaling.original_context_length")
    if original is not None:
        scaling["original_max_position_embeddings"] = int(original)
    return scaling


def hf_tensor_name(name: str) -> str | None:
    """The Hugging Face parameter a GGUF tensor becomes (None: not a Llama weight)."""
    base, _, suffix = name.rpartition(".")
    if suffix != "weight":
        return None
    if base in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[base]}.weight"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _LAYER_TENSORS:
        return f"model.layers.{parts[1]}.{_LAYER_TENSORS[parts[2]]}.weight"
    return None


def unpermute(weights: Any, heads: int) -> Any:
    """Undo llama.cpp's rope permutation of a q or k projection (rows grouped per head)."""
    dim = weights.shape[0] // heads // 2
    return weights.reshape(heads, dim, 2, *weights.shape[1:]).swapaxes(2, 1).reshape(weights.shape)


def tensors_of(reader: Any, config: dict[str, Any], path: Path) -> dict[str, Any]:
    """The model's weights as numpy arrays in Hugging Face layout and names."""
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    floats = {GGMLQuantizationType.F32: np.float32, GGMLQuantizationType.F16: np.float16, GGMLQuantizationType.BF16: None}
    quantized = any(t.tensor_type not in floats for t in reader.tensors)
    out: dict[str, Any] = {}
    for tensor in reader.tensors:
        name = hf_tensor_name(tensor.name)
        if name is None:
            if tensor.name == "rope_freqs.weight":
                raise CookbookError(f"{str(path)!r} uses Llama 3.1 rope frequency scaling, which cookbook does not convert")
            continue
        shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
        try:
            values = np.asarray(dequantize(tensor.data, tensor.tensor_type)).reshape(shape)
        except (NotImplementedError, ValueError) as e:
            raise CookbookError(f"{str(path)!r}: cannot read tensor {tensor.name} ({first_line(e)})") from None
        if name.endswith("self_attn.q_proj.weight"):
            values = unpermute(values, config["num_attention_heads"])
        elif name.endswith("self_attn.k_proj.weight"):
            values = unpermute(values, config["num_key_value_heads"])
        keep = np.float32 if quantized else floats.get(tensor.tensor_type) or np.float32
        out[name] = np.ascontiguousarray(values.astype(keep, copy=False))
    return out


def float_type(reader: Any) -> str:
    """The dtype of the written weights: float32 unless every tensor is float16."""
    from gguf import GGMLQuantizationType

    matrices = {t.tensor_type for t in reader.tensors if len(t.shape) > 1}
    return "float16" if matrices == {GGMLQuantizationType.F16} else "float32"


def write_folder(gguf: Path, folder: Path) -> None:
    """Write the Hugging Face folder of `gguf` into the empty `folder`."""
    from safetensors.numpy import save_file

    from cookbook_cli.models.gguf_header import read_header

    meta = read_header(gguf, decode_arrays=True).metadata
    architecture_of(meta, gguf)
    tokenizer_json, tokenizer_config = tokenizer_files(meta, gguf)
    reader = open_gguf(gguf)  # the tensors
    names = {t.name for t in reader.tensors}
    if "token_embd.weight" not in names:
        raise CookbookError(f"{str(gguf)!r} has no token_embd.weight; the file is incomplete")
    vocab_size = len(meta["tokenizer.ggml.tokens"])
    config = llama_config(meta, gguf, vocab_size, tied="output.weight" not in names, dtype=float_type(reader))
    tokenizer_config["model_max_length"] = config["max_position_embeddings"]
    weights = tensors_of(reader, config, gguf)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    generation = {key: config[key] for key in ("bos_token_id", "eos_token_id", "pad_token_id") if config[key] is not None}
    for name, content in (
        ("config.json", config),
        ("generation_config.json", generation),
        ("tokenizer_config.json", tokenizer_config),
    ):
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    (folder / "tokenizer.json").write_text(tokenizer_json)
    (folder / "SOURCE.md").write_text(
        f"Converted by cookbook from {gguf.name} (sha256 {file_digest(gguf)}), conversion version {CONVERSION_VERSION}.\n"
    )
