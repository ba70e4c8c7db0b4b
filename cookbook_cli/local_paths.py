"""Names of weights that can only mean a local path.

A `--reference`, `--init-from`, `--teacher` or `kl_reference_model=` value is a
run directory, a checkpoint, a model folder, or a name the Hub or an engine
knows. One that looks like a local path and does not exist is refused at once:
tried as a Hub id it would cost a minute of retries before failing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError

_ENGINE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:")

#: Endings of files that hold weights, configs or data, never of a Hub id.
FILE_SUFFIXES = (".gguf", ".json", ".jsonl", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".npz", ".onnx")


def looks_like_local_path(spec: str) -> bool:
    """Whether `spec` can only name a local path: it starts with `/`, `.` or
    `~`, uses `\\`, has more folders than a Hub id's `owner/name`, ends in a
    file suffix or `/`, starts with `runs/`, or names a folder that exists.
    URLs and names an engine parses (`random:tiny:/path/tokenizer.json`) are not paths."""
    if "://" in spec or _ENGINE_NAME.match(spec):
        return False
    if spec.startswith(("/", ".", "~", "runs/")) or "\\" in spec or spec.endswith("/"):
        return True
    if spec.count("/") > 1 or spec.lower().endswith(FILE_SUFFIXES):
        return True
    return "/" in spec and Path(spec).expanduser().parent.is_dir()


def refuse_missing_path(spec: str, what: str, instead: str) -> None:
    """One line when `spec` looks like a local path (see above) and nothing is
    there; `what` names the option, `instead` says what to give."""
    if looks_like_local_path(spec) and not Path(spec).expanduser().exists():
        raise CookbookError(f"{what} {spec!r} does not exist; {instead}")


def hf_config_of(model: str) -> dict[str, Any] | None:
    """The Hugging Face `config.json` of a model folder or a cached Hub model;
    None when there is none here (a name only an engine knows, a remote model)."""
    import json

    from cookbook_cli.models import hf_cache_model_dir

    try:
        folder = Path(model).expanduser()
        candidates = [folder / "config.json"] if folder.is_dir() else sorted((hf_cache_model_dir(model) / "snapshots").glob("*/config.json"))
        for file in candidates:
            if file.is_file():
                config = json.loads(file.read_text(encoding="utf-8"))
                return config if isinstance(config, dict) else None
    except (OSError, ValueError):
        return None
    return None


def refuse_other_vocabulary(policy: str, other: str, what: str) -> None:
    """One line when the two models' config.json give different vocabularies:
    `other` would score token ids that mean something else to it."""
    mine, theirs = hf_config_of(policy), hf_config_of(other)
    if mine is None or theirs is None:
        return
    a, b = mine.get("vocab_size"), theirs.get("vocab_size")
    if isinstance(a, int) and isinstance(b, int) and a != b:
        raise CookbookError(
            f"{what} {other!r} has a vocabulary of {b} tokens and the model {policy!r} {a} (from their config.json): "
            "it would score token ids that mean other text to it; give a model with the same tokenizer"
        )


def check_scoring_model(policy: str, other: str, what: str, instead: str) -> None:
    """A model that scores the policy's tokens (a DPO or KL reference): not a
    missing local path, and of the policy's vocabulary."""
    refuse_missing_path(other, what, instead)
    refuse_other_vocabulary(policy, other, what)
