"""Validate a ``.gguf`` file under hard limits before the gguf library's reader (or transformers) touches it.

Layout (little-endian, versions 2 and 3): magic ``GGUF``, u32 version, u64 tensor count, u64 metadata count,
the metadata key/values, the tensor infos (name, u32 n_dims, u64 dims, u32 ggml type, u64 offset), padding to
``general.alignment`` (default 32), then the tensor data. Every count, length and offset is checked against the
bytes actually present, so a hostile header cannot make us allocate or seek absurdly.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from compsec.errors import InputError

MAX_TENSORS, MAX_KV, MAX_DIMS = 1_000_000, 100_000, 4
MAX_STRING_BYTES = 64 * 1024 * 1024
SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


@dataclass
class GGUFSummary:
    """What the validated header says: metadata scalars/strings (arrays as ``("array", n)``) and tensors as
    ``(name, ggml_type, shape, absolute_offset, n_bytes)`` with shape in GGUF order (innermost dim first)."""

    version: int
    metadata: dict = field(default_factory=dict)
    tensors: list = field(default_factory=list)


class _Reader:
    def __init__(self, handle: BinaryIO, size: int, name: str):
        self.handle, self.size, self.name = handle, size, name

    def fail(self, problem: str) -> InputError:
        return InputError(f"{self.name}: {problem}; the file is not a valid GGUF file, re-download or re-convert it")

    def take(self, n: int) -> bytes:
        if n > self.size - self.handle.tell():
            raise self.fail(f"truncated: needs {n} more bytes at offset {self.handle.tell()}")
        return self.handle.read(n)

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("Q")
        if length > MAX_STRING_BYTES:
            raise self.fail(f"string of {length} bytes exceeds the {MAX_STRING_BYTES} byte limit")
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string is not valid UTF-8") from None

    def value(self, vtype: int):
        if vtype in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[vtype])
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            return self.array()
        raise self.fail(f"unknown metadata value type {vtype}")

    def array(self):
        etype, count = self.unpack("I"), self.unpack("Q")
        if etype in SCALAR_FORMATS:
            self.skip(count * struct.calcsize(SCALAR_FORMATS[etype]))
        elif etype == STRING:
            if count * 8 > self.size - self.handle.tell():
                raise self.fail(f"array of {count} strings cannot fit in the file")
            for _ in range(count):
                self.string()
        else:
            raise self.fail(f"unsupported array element type {etype}")
        return ("array", count)

    def skip(self, n: int) -> None:
        if n > self.size - self.handle.tell():
            raise self.fail(f"truncated: an array needs {n} bytes at offset {self.handle.tell()}")
        self.handle.seek(n, 1)


def _read_counts(reader: _Reader) -> tuple[int, int, int]:
    if reader.take(4) != b"GGUF":
        raise reader.fail("bad magic (expected 'GGUF')")
    version = reader.unpack("I")
    if version not in (2, 3):
        raise reader.fail(f"unsupported version {version} (compsec reads GGUF v2/v3, little-endian)")
    n_tensors, n_kv = reader.unpack("Q"), reader.unpack("Q")
    if n_tensors > MAX_TENSORS or n_tensors * 24 > reader.size:
        raise reader.fail(f"absurd tensor count {n_tensors}")
    if n_kv > MAX_KV or n_kv * 13 > reader.size:
        raise reader.fail(f"absurd metadata count {n_kv}")
    return version, n_tensors, n_kv


def _read_tensor_info(reader: _Reader) -> tuple[str, int, list[int], int, int]:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    name, n_dims = reader.string(), reader.unpack("I")
    if n_dims > MAX_DIMS:
        raise reader.fail(f"tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
    dims = [reader.unpack("Q") for _ in range(n_dims)]
    ggml_type, offset = reader.unpack("I"), reader.unpack("Q")
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise reader.fail(f"tensor {name!r} has unknown ggml type {ggml_type}") from None
    if dims and dims[0] % block:
        raise reader.fail(f"tensor {name!r} row of {dims[0]} is not a multiple of the block size {block}")
    return name, ggml_type, dims, offset, math.prod(dims) // block * type_size


def _check_data(reader: _Reader, infos: list, alignment: int) -> list:
    data_start = -(-reader.handle.tell() // alignment) * alignment
    tensors, cursor = [], 0
    for name, ggml_type, dims, offset, nbytes in sorted(infos, key=lambda info: info[3]):
        if offset % alignment or offset < cursor:
            raise reader.fail(f"tensor {name!r} offset {offset} is misaligned or overlaps the previous tensor")
        if data_start + offset + nbytes > reader.size:
            raise reader.fail(f"tensor {name!r} data runs past the end of the file (truncated?)")
        cursor = offset + nbytes
        tensors.append((name, ggml_type, tuple(dims), data_start + offset, nbytes))
    return tensors


def read_gguf_header(path: str | Path) -> GGUFSummary:
    """Validate the GGUF header at ``path`` (metadata, tensor infos, data bounds); raise InputError if bad."""
    path = Path(path)
    with path.open("rb") as handle:
        reader = _Reader(handle, path.stat().st_size, path.name)
        version, n_tensors, n_kv = _read_counts(reader)
        summary = GGUFSummary(version)
        for _ in range(n_kv):
            key = reader.string()
            summary.metadata[key] = reader.value(reader.unpack("I"))
        infos = [_read_tensor_info(reader) for _ in range(n_tensors)]
        alignment = summary.metadata.get("general.alignment", 32)
        if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
            raise reader.fail(f"general.alignment {alignment!r} is not a power of two")
        summary.tensors = _check_data(reader, infos, alignment)
    return summary
