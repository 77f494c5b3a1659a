"""Read and set ``__metadata__`` entries of a safetensors file without touching (or loading) its tensors.

Only the header changes: the new header (same tensor entries and offsets, padded with spaces to a multiple of 8
bytes as safetensors itself writes it) is followed by the old data buffer copied in chunks, into a temporary
file in the same folder that then replaces the original atomically. Tensor digests are therefore unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from compsec.integrity.digests import CHUNK_BYTES
from compsec.integrity.safetensors_check import read_header


def read_metadata(path: str | Path) -> dict[str, str]:
    """The validated ``__metadata__`` map of the safetensors file at ``path`` (empty when absent)."""
    return dict(read_header(path).get("__metadata__", {}))


def _encode_header(header: dict) -> bytes:
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def set_metadata(path: str | Path, key: str, value: str) -> None:
    """Set ``__metadata__[key] = value`` (both strings) in the safetensors file at ``path``, in place."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise TypeError("safetensors metadata keys and values must be strings; json.dumps the value first")
    path = Path(path)
    header = read_header(path)
    metadata = {**header.pop("__metadata__", {}), key: value}
    new_header = _encode_header({"__metadata__": metadata, **header})
    temporary = path.with_name(f".{path.name}.compsec-tmp")
    try:
        with path.open("rb") as old, temporary.open("wb") as new:
            old_length = int.from_bytes(old.read(8), "little")
            old.seek(8 + old_length)
            new.write(len(new_header).to_bytes(8, "little") + new_header)
            shutil.copyfileobj(old, new, CHUNK_BYTES)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
