"""Where the local engine keeps checkpoints, and how it reads and writes them.

Layout under the service's checkpoint directory (mirroring Tinker's paths):

    weights/<name>/          save_state: meta.json, weights.safetensors, optimizer.safetensors
    sampler_weights/<name>/  save_weights_for_sampler: meta.json plus a peft adapter
                             (LoRA) or a Hugging Face model folder (full fine-tuning)

Everything is JSON or safetensors: nothing is pickled, so loading a checkpoint
never runs code. Names are single path components, so a name can never write
outside the checkpoint directory. A folder is written beside its final place
and renamed into it, so a crash never leaves half a checkpoint under the name.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError

FORMAT = "cookbook-local/1"
META = "meta.json"
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE_KIND = "weights"
SAMPLER_KIND = "sampler_weights"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """A checkpoint name: one path component of letters, digits, '.', '_', '-'."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise CookbookError(
            f"checkpoint name {name!r} is not allowed: use up to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', '\\' or '..')"
        )
    return name


def checkpoint_dir(root: Path, kind: str, name: str) -> Path:
    path = (root / kind / validate_name(name)).resolve()
    # Belt and braces: the name check already makes escaping impossible.
    if path.parent != (root / kind).resolve():
        raise CookbookError(f"checkpoint name {name!r} resolves outside {root / kind}")
    return path


def resolve(root: Path, path_or_name: str, kind: str) -> Path:
    """A checkpoint folder from the path `save_*` returned, or a bare name under
    `root/kind` (a bare name never means a folder of the working directory)."""
    if _NAME.match(path_or_name) and ".." not in path_or_name:
        folder = checkpoint_dir(root, kind, path_or_name)
    elif Path(path_or_name).expanduser().is_dir():
        folder = Path(path_or_name).expanduser().resolve()
    else:
        raise CookbookError(f"no checkpoint at {path_or_name!r}: give the path that save_state returned, or a name")
    if not (folder / META).is_file():
        raise CookbookError(f"{str(folder)!r} is not a local-engine checkpoint (no {META})")
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CookbookError(f"cannot read {folder / META}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CookbookError(f"{folder} was not written by this version of the local engine (format {FORMAT})")
    if meta.get("kind") == "sampler" and meta.get("lora_rank"):
        check_adapter_config(folder)
    return meta


def check_adapter_config(folder: Path) -> dict[str, Any]:
    """The LoRA adapter's `adapter_config.json`, checked for what peft and the
    export merge read (before either loads a model, which fails deep inside on a damaged file)."""
    from cookbook_cli.user_files import read_json

    path = folder / "adapter_config.json"
    config = read_json(path, "adapter config")
    damaged = f"{path} is damaged"
    fix = "the checkpoint cannot be used: pick another (--checkpoint) or train again"
    if not isinstance(config, dict):
        raise CookbookError(f"{damaged} (not a JSON object); {fix}")
    if config.get("peft_type") != "LORA":
        raise CookbookError(f"{damaged}: peft_type is {config.get('peft_type')!r}, not 'LORA'; {fix}")
    r, alpha = config.get("r"), config.get("lora_alpha")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise CookbookError(f"{damaged}: 'r' must be a positive whole number, got {r!r}; {fix}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise CookbookError(f"{damaged}: 'lora_alpha' must be a number, got {alpha!r}; {fix}")
    targets = config.get("target_modules")
    if not (isinstance(targets, str) or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
        raise CookbookError(f"{damaged}: 'target_modules' must be a list of module names, got {targets!r}; {fix}")
    return config


@contextmanager
def writing(final: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a scratch folder that becomes `final` when the block succeeds."""
    if final.exists() and not overwrite:
        raise CookbookError(f"checkpoint {str(final)!r} already exists: choose another name or pass overwrite=True")
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    try:
        yield scratch
        if final.exists():
            shutil.rmtree(final)
        scratch.rename(final)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META).write_text(json.dumps({"format": FORMAT, **meta}, indent=2) + "\n", encoding="utf-8")


def save_tensors(path: Path, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(path))


def load_tensors(path: Path, device: Any) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise CookbookError(f"checkpoint file {str(path)!r} is missing")
    try:
        return load_file(str(path), device=str(device))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CookbookError(f"checkpoint file {str(path)!r} is damaged ({reason}); use another checkpoint") from None


def check_compatible(meta: dict[str, Any], expected: dict[str, Any], describe: Callable[[dict[str, Any]], str]) -> None:
    """A checkpoint must come from the same base model and adapter layout."""
    if any(meta.get(k) != v for k, v in expected.items()):
        raise CookbookError(f"checkpoint was saved from {describe(meta)}; this client trains {describe(expected)}")
