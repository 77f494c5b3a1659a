"""Streaming digests: sha256 of whole files and of individual tensors (raw bytes + dtype + shape).

A tensor digest is ``sha256(b"compsec-tensor-v1\\0" + dtype + b"\\0" + "d0,d1,..." + b"\\0" + raw bytes)`` with
``dtype`` the safetensors code (``"F32"``, ``"BF16"``) or the GGML type name (``"Q4_0"``), shape in PyTorch order
(outermost first) and the raw little-endian bytes exactly as stored. Two tensors share a digest only when their
stored bytes, dtype and shape are all equal, so renaming a dtype or reshaping is caught as well as a flipped bit.

Files are read in :data:`CHUNK_BYTES` chunks and tensors one at a time, from offsets given by the validated
headers of :mod:`compsec.integrity.safetensors_check` / :mod:`compsec.integrity.gguf_check` (never parsed twice by
a library that trusts them), so memory stays bounded by the chunk size whatever the model size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1 << 20
DIGEST_VERSION = b"compsec-tensor-v1"
TORCH_TO_SAFETENSORS = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL", "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2", "uint16": "U16", "uint32": "U32", "uint64": "U64",
}


@dataclass(frozen=True)
class TensorDigest:
    """One tensor's dtype code, shape (outermost first) and sha256 hex digest (see the module docstring)."""

    dtype: str
    shape: tuple[int, ...]
    sha256: str

    def as_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "sha256": self.sha256}


def _tensor_hasher(dtype: str, shape: tuple[int, ...]):
    prefix = b"\0".join([DIGEST_VERSION, dtype.encode(), ",".join(str(d) for d in shape).encode()]) + b"\0"
    return hashlib.sha256(prefix)


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of the file at ``path``, read in chunks."""
    hasher = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def _span_digest(handle: BinaryIO, start: int, length: int, dtype: str, shape: tuple[int, ...]) -> TensorDigest:
    hasher = _tensor_hasher(dtype, shape)
    handle.seek(start)
    left = length
    while left > 0:
        chunk = handle.read(min(CHUNK_BYTES, left))
        if not chunk:
            raise OSError(f"{getattr(handle, 'name', 'file')}: ended early while hashing; was it modified?")
        hasher.update(chunk)
        left -= len(chunk)
    return TensorDigest(dtype, shape, hasher.hexdigest())


def safetensors_tensor_digests(path: str | Path) -> dict[str, TensorDigest]:
    """Digest of every tensor of a ``.safetensors`` file (header validated first), in data order."""
    from compsec.integrity.safetensors_check import read_header

    path = Path(path)
    header = read_header(path)
    with path.open("rb") as handle:
        data_start = 8 + int.from_bytes(handle.read(8), "little")
        entries = sorted(((n, e) for n, e in header.items() if n != "__metadata__"),
                         key=lambda item: item[1]["data_offsets"][0])
        return {name: _span_digest(handle, data_start + entry["data_offsets"][0],
                                   entry["data_offsets"][1] - entry["data_offsets"][0],
                                   entry["dtype"], tuple(entry["shape"])) for name, entry in entries}


def gguf_tensor_digests(path: str | Path) -> dict[str, TensorDigest]:
    """Digest of every tensor of a ``.gguf`` file (header validated first): GGML type name, PyTorch-order shape."""
    from gguf.constants import GGMLQuantizationType

    from compsec.integrity.gguf_check import read_gguf_header

    path = Path(path)
    summary = read_gguf_header(path)
    with path.open("rb") as handle:
        return {name: _span_digest(handle, offset, nbytes, GGMLQuantizationType(ggml_type).name, dims[::-1])
                for name, ggml_type, dims, offset, nbytes in summary.tensors}


def tensor_digests(path: str | Path) -> dict[str, TensorDigest] | None:
    """Tensor digests of a safetensors or GGUF file; None for any other kind of file."""
    suffix = Path(path).suffix
    if suffix == ".safetensors":
        return safetensors_tensor_digests(path)
    if suffix == ".gguf":
        return gguf_tensor_digests(path)
    return None


def torch_tensor_digest(tensor) -> TensorDigest:
    """Digest of an in-memory ``torch.Tensor`` exactly as :func:`safetensors_tensor_digests` would compute it
    after ``safetensors.torch.save_file`` (same dtype code, shape and little-endian bytes)."""
    import sys

    import torch

    if sys.byteorder != "little":
        raise OSError("compsec's tensor digests assume a little-endian machine")
    dtype_name = str(tensor.dtype).removeprefix("torch.")
    if dtype_name not in TORCH_TO_SAFETENSORS:
        raise ValueError(f"tensor dtype {tensor.dtype} has no safetensors code; cast it to a standard dtype first")
    shape = tuple(int(d) for d in tensor.shape)
    hasher = _tensor_hasher(TORCH_TO_SAFETENSORS[dtype_name], shape)
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    if flat.numel():
        hasher.update(flat.view(torch.uint8).numpy().tobytes())
    return TensorDigest(TORCH_TO_SAFETENSORS[dtype_name], shape, hasher.hexdigest())
