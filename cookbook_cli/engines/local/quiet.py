"""transformers' own progress bars ("Loading weights", "Writing model shards")
draw over cookbook's progress display and fill piped output; they are off
while cookbook loads or saves a model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_hf_progress_bars() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
