"""A GGUF file's header read directly: its metadata and tensor shapes. String
arrays (the vocabulary, the merges) are counted rather than decoded unless
asked for, so `models info` answers in a fraction of a second where
`gguf.GGUFReader` parses every token first; conversion reads the metadata
here too, so it depends on no version of the `gguf` package's field API. The format: magic `GGUF`, version, tensor and key/value counts,
the key/value pairs, then one (name, shape, type, offset) per tensor."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookbook_cli.errors import CookbookError

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class StringArray:
    """A string array left undecoded: its length only."""

    count: int


@dataclass(frozen=True)
class GGUFHeader:
    metadata: dict[str, Any]
    tensors: dict[str, tuple[int, ...]]  # name -> shape, in GGUF (innermost-first) order

    @property
    def parameters(self) -> int:
        total = 0
        for shape in self.tensors.values():
            count = 1
            for n in shape:
                count *= n
            total += count
        return total


class _Cursor:
    def __init__(self, data: Any, decode_arrays: bool) -> None:
        self.data, self.at, self.decode_arrays = data, 0, decode_arrays

    def unpack(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self, decode: bool = True) -> str | None:
        length = self.unpack("<Q")
        if self.at + length > len(self.data):
            raise ValueError("a string runs past the end of the file")
        raw = self.data[self.at : self.at + length] if decode else None
        self.at += length
        return bytes(raw).decode("utf-8", errors="replace") if raw is not None else None

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            element, count = self.unpack("<I"), self.unpack("<Q")
            if element == _STRING and not self.decode_arrays:
                for _ in range(count):
                    self.string(decode=False)
                return StringArray(count)
            return [self.value(element) for _ in range(count)]
        raise ValueError(f"unknown value type {kind}")


def read_header(path: Path, decode_arrays: bool = False) -> GGUFHeader:
    """The header of the GGUF file at `path` (string arrays as `StringArray`
    counts unless `decode_arrays`); a file that is not one is one line."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:4] != b"GGUF":
                raise ValueError("no GGUF magic number at its start")
            cursor = _Cursor(data, decode_arrays)
            cursor.at = 4
            version = cursor.unpack("<I")
            if version < 2:
                raise ValueError(f"GGUF version {version} is too old")
            tensor_count, kv_count = cursor.unpack("<Q"), cursor.unpack("<Q")
            metadata: dict[str, Any] = {}
            for _ in range(kv_count):
                key = cursor.string()
                metadata[str(key)] = cursor.value(cursor.unpack("<I"))
            tensors: dict[str, tuple[int, ...]] = {}
            for _ in range(tensor_count):
                name = str(cursor.string())
                dims = cursor.unpack("<I")
                tensors[name] = tuple(cursor.unpack("<Q") for _ in range(dims))
                cursor.unpack("<I")  # type
                cursor.unpack("<Q")  # offset
    except (OSError, ValueError, struct.error) as e:
        raise CookbookError(f"{str(path)!r} is not a readable GGUF file ({e or type(e).__name__})") from None
    return GGUFHeader(metadata, tensors)
