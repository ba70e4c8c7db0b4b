"""What a model is, read from its files without loading weights: config.json,
tokenizer_config.json and safetensors headers of a folder, or a GGUF's metadata."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook_cli.models.hf_cache import cached_snapshot


@dataclass(frozen=True)
class ModelFacts:
    architecture: str | None = None
    parameters: int | None = None
    vocabulary: int | None = None
    context_length: int | None = None
    hidden_size: int | None = None
    chat_template: bool | None = None  # None: unknown (no local files)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _safetensors_parameters(folder: Path) -> int | None:
    """Parameters counted from the safetensors headers (8-byte length, then JSON)."""
    total, found = 0, False
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with open(file, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length))
        except (OSError, ValueError, struct.error):
            return None
        for name, entry in header.items():
            if name != "__metadata__" and isinstance(entry, dict):
                count = 1
                for n in entry.get("shape", []):
                    count *= int(n)
                total += count
                found = True
    return total if found else None


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file():
        return True
    return bool(_read_json(folder / "tokenizer_config.json").get("chat_template"))


def folder_facts(folder: Path) -> ModelFacts:
    config = _read_json(folder / "config.json")
    # Multimodal configs keep the language model's settings under text_config.
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}

    def setting(key: str) -> Any:
        value = config.get(key, text.get(key))
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    architectures = config.get("architectures")
    return ModelFacts(
        architecture=architectures[0] if isinstance(architectures, list) and architectures else config.get("model_type"),
        parameters=_safetensors_parameters(folder),
        vocabulary=setting("vocab_size"),
        context_length=setting("max_position_embeddings"),
        hidden_size=setting("hidden_size"),
        chat_template=_has_chat_template(folder),
    )


def gguf_facts(path: Path) -> ModelFacts:
    from cookbook_cli.models.gguf_header import StringArray, read_header

    header = read_header(path)
    meta = header.metadata
    arch = meta.get("general.architecture")
    tokens = meta.get("tokenizer.ggml.tokens")
    context = meta.get(f"{arch}.context_length")
    hidden = meta.get(f"{arch}.embedding_length")
    return ModelFacts(
        architecture=f"{arch} (GGUF)" if isinstance(arch, str) else None,
        parameters=header.parameters or None,
        vocabulary=tokens.count if isinstance(tokens, StringArray) else None,
        context_length=int(context) if context is not None else None,
        hidden_size=int(hidden) if hidden is not None else None,
        chat_template=bool(meta.get("tokenizer.chat_template")),
    )


def model_facts(name: str) -> ModelFacts:
    """Facts of a model input (see `inputs`); all unknown for a Hub id that is
    not in the Hugging Face cache and for random shapes."""
    from cookbook_cli.models.inputs import resolve_model_input

    path = Path(name).expanduser()
    if path.is_dir():  # read what is there, even from an incomplete folder
        return folder_facts(path)
    resolved = resolve_model_input(name, convert=False)
    if resolved.folder is not None:
        return folder_facts(resolved.folder)
    if resolved.gguf is not None:
        return gguf_facts(resolved.gguf)
    snapshot = cached_snapshot(name) if resolved.kind == "hub" else None
    return folder_facts(snapshot) if snapshot is not None else ModelFacts()
