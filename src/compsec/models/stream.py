"""Stream tensors out of checkpoints without building a model.

``iter_tensors(path)`` yields ``(name, tensor)`` one at a time from a ``.safetensors`` file or from every
shard of a folder (honouring ``model.safetensors.index.json``), through ``safetensors.safe_open`` (mmap), so
peak memory stays near the largest tensor. ``tensor_infos(path)`` reads headers only. GGUF files are listed
with the gguf package's ``GGUFReader`` after :mod:`compsec.integrity.gguf_check` has validated them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compsec.errors import InputError
from compsec.integrity.path_policy import checked_input
from compsec.integrity.safetensors_check import read_header

if TYPE_CHECKING:
    import torch

INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class TensorInfo:
    """Header facts about one tensor: name, dtype (safetensors code such as ``"F32"`` or a GGML type name),
    shape (PyTorch order, outermost first) and the file it lives in."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: str


def _index_shards(folder: Path, index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = list(dict.fromkeys(weight_map.values()))
        if not all(isinstance(name, str) for name in names):
            raise TypeError("shard names must be strings")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{index}: not a valid safetensors index (needs a 'weight_map'); fix or delete it")
    shards = [folder / name for name in names]
    for shard in shards:
        if shard.resolve().parent != folder.resolve() or not shard.is_file():
            raise InputError(f"{index}: shard {shard.name} is missing or outside the folder; re-download it")
    return shards


def safetensors_files(path: str | Path) -> list[Path]:
    """The safetensors file(s) behind ``path``: the file itself, the index's shards, or every shard present."""
    path = checked_input(path, "model file or folder")
    if path.is_file():
        if path.suffix != ".safetensors":
            raise InputError(f"{path}: expected a .safetensors file or a folder of them")
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder; check the path")
    index = path / INDEX_NAME
    shards = _index_shards(path, index) if index.is_file() else sorted(path.glob("*.safetensors"))
    if not shards:
        raise InputError(f"{path}: no .safetensors files found; convert the weights to safetensors first")
    return shards


def tensor_infos(path: str | Path) -> list[TensorInfo]:
    """Names, dtypes and shapes of every tensor, read (and validated) from the headers only."""
    infos = []
    for shard in safetensors_files(path):
        header = read_header(shard)
        for name, entry in header.items():
            if name != "__metadata__":
                infos.append(TensorInfo(name, entry["dtype"], tuple(entry["shape"]), str(shard)))
    return infos


def iter_tensors(path: str | Path, device: str = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` for every tensor, one at a time in file order (validated header, mmap'd)."""
    from safetensors import safe_open

    for shard in safetensors_files(path):
        header = read_header(shard)
        names = sorted((n for n in header if n != "__metadata__"), key=lambda n: header[n]["data_offsets"])
        with safe_open(str(shard), framework="pt", device=device) as handle:
            for name in names:
                yield name, handle.get_tensor(name)


def gguf_tensor_infos(path: str | Path) -> list[TensorInfo]:
    """List a GGUF file's tensors (dtype = GGML type name, shape in PyTorch order) with gguf's GGUFReader."""
    from compsec.integrity.gguf_check import read_gguf_header

    read_gguf_header(path)
    try:
        from gguf import GGUFReader
    except ImportError as err:
        from compsec.errors import MissingDependencyError

        raise MissingDependencyError("gguf", purpose="reading GGUF files") from err
    reader = GGUFReader(str(path))
    return [
        TensorInfo(t.name, t.tensor_type.name, tuple(int(d) for d in reversed(t.shape)), str(path))
        for t in reader.tensors
    ]
