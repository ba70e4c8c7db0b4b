"""Write a tiny randomly initialised Llama model folder for the local Tinker
server (`scripts/tinker_local_server.sh`).

    python scripts/tinker_local_model.py OUT_DIR TOKENIZER_DIR

TOKENIZER_DIR holds a Llama 3 `tokenizer.json` and `tokenizer_config.json`
(e.g. ../shared/tokenizers/llama3); they are copied beside the weights, so the
folder is a complete Hugging Face model that both SkyRL (the server) and
cookbook (the tokenizer, by the same path) load. 2 layers, hidden 64, tied
embeddings, float32, weights from a fixed seed. Runs in the SkyRL virtual
environment (it needs torch and transformers). The folder appears whole or not
at all: it is built beside OUT_DIR and renamed into place.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=500000.0,
    tie_word_embeddings=True,
)


def _vocab_size(tokenizer_json: Path) -> int:
    spec = json.loads(tokenizer_json.read_text())
    ids = list(spec["model"]["vocab"].values()) + [t["id"] for t in spec.get("added_tokens", [])]
    return max(ids) + 1


def _special_id(tokenizer_json: Path, config: dict, field: str) -> int | None:
    token = config.get(field)
    if isinstance(token, dict):
        token = token.get("content")
    spec = json.loads(tokenizer_json.read_text())
    by_content = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    return by_content.get(token) if token else None


def make(out_dir: Path, tokenizer_dir: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    missing = [f for f in TOKENIZER_FILES if not (tokenizer_dir / f).is_file()]
    if missing:
        raise SystemExit(f"tinker_local_model: {tokenizer_dir} lacks {', '.join(missing)}")
    tok_json = tokenizer_dir / "tokenizer.json"
    tok_config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    config = LlamaConfig(
        vocab_size=_vocab_size(tok_json),
        bos_token_id=_special_id(tok_json, tok_config, "bos_token"),
        eos_token_id=_special_id(tok_json, tok_config, "eos_token"),
        torch_dtype="float32",
        **SHAPE,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in TOKENIZER_FILES:
            shutil.copyfile(tokenizer_dir / name, tmp / name)
        tmp.chmod(0o755)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    make(Path(sys.argv[1]), Path(sys.argv[2]))
