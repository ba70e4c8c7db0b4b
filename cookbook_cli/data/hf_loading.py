"""Loading one split of a Hugging Face dataset: a Hub id, a local dataset
folder, or a single parquet/JSON/JSONL/CSV/Arrow file, through
`datasets.load_dataset`. Every builder that reads Hugging Face data (the
supervised `hf` builder, the preference builders) loads through here, so a
failure is one line naming the dataset and split."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError, first_line

FILE_FORMATS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv", ".arrow": "arrow"}


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """`datasets` logs its own copy of a load error (with a traceback for some
    files); the error is reported once, by us."""
    log = logging.getLogger("datasets")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def load_split(path: str, config_name: str | None, split: str, label: str | None = None, streaming: bool = False) -> Any:
    """The `split` of dataset `path` as a `datasets.Dataset` (with `streaming`, a
    `datasets.IterableDataset` that reads rows as they are iterated, nothing
    up front). A local file is read with the loader its suffix names, and
    `split` is its name for it."""
    label = label or path
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a core dependency
        raise CookbookError(f"loading {label!r} needs the `datasets` package: {e}") from None
    local = Path(path).expanduser()
    try:
        with quiet_datasets():
            if local.is_file():
                fmt = FILE_FORMATS.get(local.suffix.lower())
                if fmt is None:
                    raise CookbookError(
                        f"cannot read {path!r}: give a .parquet, .json, .jsonl, .csv or .arrow file, or a dataset id"
                    )
                if streaming and fmt == "parquet":
                    return _stream_parquet(str(local), split)
                return datasets.load_dataset(fmt, data_files={split: str(local)}, split=split, streaming=streaming)
            return datasets.load_dataset(str(local) if local.is_dir() else path, config_name, split=split, streaming=streaming)
    except CookbookError:
        raise
    except Exception as e:  # noqa: BLE001 - network, missing split, bad files: one line for the user
        raise CookbookError(f"cannot load dataset {label!r} split {split!r}: {first_line(e)}") from None


def _parquet_rows(path: str) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _stream_parquet(path: str, split: str) -> Any:
    """A local parquet file as a one-shard `IterableDataset` read by pyarrow's
    own batch reader. datasets' parquet streaming (5.x) keeps Arrow buffers of
    what it has read, so its memory grows with the rows read (~4 KB a row here);
    this stays flat."""
    import datasets
    import pyarrow.parquet as pq

    features = datasets.Features.from_arrow_schema(pq.read_schema(path))
    return datasets.IterableDataset.from_generator(
        _parquet_rows, features=features, gen_kwargs={"path": path}, split=datasets.NamedSplit(split)
    )


def require_columns(ds: Any, columns: tuple[str, ...], label: str, split: str, hint: str = "") -> None:
    """Refuse a split that lacks any of `columns`, listing the ones it has."""
    have = column_names(ds, label, split)
    missing = [c for c in columns if c not in have]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise CookbookError(
            f"dataset {label!r} split {split!r} has no column {names} (columns: {', '.join(have)})"
            + (f"; {hint}" if hint else "")
        )


def column_names(ds: Any, label: str, split: str) -> list[str]:
    """The split's columns. A streamed JSON file declares none until it is read:
    then they are the first row's keys (reading that one row only)."""
    if ds.column_names is not None:
        return list(ds.column_names)
    try:
        with quiet_datasets():
            first = next(iter(ds.take(1)), None)
    except Exception as e:  # noqa: BLE001 - a malformed file: one line for the user
        raise CookbookError(f"cannot read dataset {label!r} split {split!r}: {first_line(e)}") from None
    if first is None:
        raise CookbookError(f"dataset {label!r} split {split!r} holds no rows")
    return list(first)
