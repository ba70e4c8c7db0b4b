"""What a `--model` value names, resolved to something loadable.

`resolve_model_input(name)` is the one place that turns a model input into a
local folder or a Hub id; engines, `sources` and the CLI all call it:

- `random:<shape>:<tokenizer>`: a randomly initialised shape (the local engine's);
- a folder: a Hugging Face model folder (config.json, tokenizer.json, weights);
- a `.gguf` file: converted once to a folder, cached by content digest (`gguf_folder`);
- a name a model family registers offline (e.g. `smollm2-135m-instruct`, and its Hub
  id): the Hugging Face cache's copy when it holds one, else the family's local file;
- anything else: a Hub id, loaded as transformers does (the cache, else a download).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cookbook_cli.errors import CookbookError
from cookbook_cli.models.families import offline_model
from cookbook_cli.models.hf_cache import cached_snapshot

RANDOM_PREFIX = "random:"
FOLDER_HINT = "a Hugging Face model folder (config.json, tokenizer.json, weights), a .gguf file, a registered name or a Hub id"


@dataclass(frozen=True)
class ModelInput:
    """A resolved `--model`: where its files are and where they came from."""

    name: str  # as given
    kind: str  # "random", "folder", "gguf", "registered" or "hub"
    folder: Path | None  # the local model folder (for a .gguf: the converted one)
    origin: str  # where it came from, in words (for `models info` and errors)
    gguf: Path | None = None  # the .gguf file it comes from, if any

    @property
    def load_from(self) -> str:
        """What to hand `from_pretrained` and the tokenizer loader: the folder, else the name."""
        return str(self.folder) if self.folder is not None else self.name


_ENGINE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:")

#: Endings of files that hold weights, configs or data, never of a Hub id.
FILE_SUFFIXES = (".gguf", ".json", ".jsonl", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".npz", ".onnx")


def looks_like_path(name: str) -> bool:
    """Whether `name` can only mean a local path (so, missing, it is refused at
    once instead of tried on the Hub): it starts with `/`, `.` or `~`, uses
    `\\`, has more folders than a Hub id's `owner/name`, ends in a file suffix
    or `/`, starts with `runs/`, or names a folder that exists. URLs and names
    an engine parses (`random:tiny:/path/tokenizer.json`) are not paths."""
    if "://" in name or _ENGINE_NAME.match(name):
        return False
    if name.startswith(("/", ".", "~", "runs/")) or "\\" in name or name.endswith("/"):
        return True
    if name.count("/") > 1 or name.lower().endswith(FILE_SUFFIXES):
        return True
    try:
        return "/" in name and Path(name).expanduser().parent.is_dir()
    except OSError:  # a name too long for a path
        return False


def _folder_input(name: str, folder: Path, kind: str, origin: str) -> ModelInput:
    for needed in ("config.json", "tokenizer.json"):
        if not (folder / needed).is_file():
            raise CookbookError(f"model folder {str(folder)!r} has no {needed}; --model takes {FOLDER_HINT}")
    return ModelInput(name, kind, folder, origin)


def _gguf_input(name: str, file: Path, kind: str, origin: str, convert: bool) -> ModelInput:
    from cookbook_cli.models.gguf_folder import cached_folder, converted_folder

    folder = converted_folder(file) if convert else cached_folder(file)
    return ModelInput(name, kind, folder, origin, gguf=file)


def resolve_model_input(name: str, convert: bool = True) -> ModelInput:
    """Resolve a `--model` value (see the module docstring). `convert=False` leaves
    a .gguf unconverted (its `folder` is the cached conversion, or None) for
    callers that only read its metadata."""
    if not name.strip():
        raise CookbookError(f"the model name is empty; --model takes {FOLDER_HINT}")
    if name.startswith(RANDOM_PREFIX):
        return ModelInput(name, "random", None, "a randomly initialised shape (local engine)")
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_input(name, path, "folder", "a model folder")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise CookbookError(f"model {name!r} is a file but not a .gguf; --model takes {FOLDER_HINT}")
        return _gguf_input(name, path, "gguf", f"the GGUF file {path.name}", convert)
    offline = offline_model(name)
    if offline is not None:
        snapshot = cached_snapshot(offline.hub_id) if offline.hub_id else None
        if snapshot is not None:
            return _folder_input(name, snapshot, "registered", f"{offline.hub_id} in the Hugging Face cache")
        located = offline.locate()
        if located is None:
            if "/" in name:  # a Hub id: the Hub may still have it
                return ModelInput(name, "hub", None, "a Hugging Face Hub id")
            raise CookbookError(f"model {name!r} is not installed: {offline.install}")
        if located.is_dir():
            return _folder_input(name, located, "registered", f"registered model, from {located}")
        return _gguf_input(name, located, "registered", f"registered model, from {located}", convert)
    if looks_like_path(name):
        raise CookbookError(f"model path {name!r} does not exist; --model takes {FOLDER_HINT}")
    return ModelInput(name, "hub", None, "a Hugging Face Hub id")
