"""Stream a checkpoint's tensors for the scanner: mmap'd, chunks of whole rows, never a whole tensor at once.

Every tensor of every shard is listed (the report names why each one it did not examine was skipped); float
tensors are all read once for NaN/Inf (the same count as ``compsec check``:
:func:`compsec.integrity.safetensors_check.nonfinite_count`), quantizable ones also scanned.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.integrity.safetensors_check import nonfinite_count

STORAGE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
NARROWER = {torch.float32: (torch.bfloat16, torch.float16), torch.float16: (torch.bfloat16,)}


@dataclass
class StoredTensor:
    """One tensor of a shard: name, shape, safetensors dtype string, its mmap'd slice, and why it is not a
    quantizable weight (None when it is one)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    slice: object
    not_quantizable: str | None

    def chunks(self, per_chunk: int) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first row, rows)`` for consecutive chunks of ``per_chunk`` rows (a 1-D or 0-D tensor: one chunk)."""
        if len(self.shape) < 2:
            yield 0, self.slice[:]
            return
        for start in range(0, self.shape[0], per_chunk):
            yield start, self.slice[start:start + per_chunk]

    def skip_reason(self) -> str | None:
        """Why a quantizable-named tensor cannot be scanned (None when it can)."""
        if self.not_quantizable:
            return f"not a quantizable linear weight ({self.not_quantizable})"
        if len(self.shape) != 2 or 0 in self.shape:
            return f"not a 2-D weight matrix (shape {list(self.shape)})"
        if self.dtype not in STORAGE:
            return f"dtype {self.dtype} is not float32, float16 or bfloat16"
        return None


def stored_tensors(path: Path, notes: list[str]) -> Iterator[StoredTensor]:
    """Every tensor of the safetensors file or model folder ``path``, in file order; warnings (an unknown
    architecture) go to ``notes``."""
    from safetensors import safe_open

    from compsec.models.linear import never_quantized, quantizable_weights
    from compsec.models.stream import safetensors_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wanted = {record.name for record in quantizable_weights(path)}
        others = never_quantized(path)
    notes += sorted({str(w.message) for w in caught})
    for shard in safetensors_files(path):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118  (safe_open handles are not containers)
                tensor_slice = handle.get_slice(name)
                reason = None if name in wanted else others.get(name, "other")
                yield StoredTensor(name, tuple(tensor_slice.get_shape()), tensor_slice.get_dtype(), tensor_slice,
                                   reason)


def values_check(tensor: StoredTensor, per_chunk: int) -> tuple[int, torch.dtype | None]:
    """``(NaN/Inf count, storage)`` in one pass: ``storage`` is the narrowest dtype holding every value exactly
    (bf16, then fp16, else the stored one; None for a non-float or unscannable tensor).

    A checkpoint trained in bf16 and saved as float32 only takes bf16 values; judged against the float32 grid,
    bf16 granularity inside a narrow interval would look like edge clustering (a false alarm).
    """
    if tensor.dtype not in FLOAT_DTYPES:
        return 0, None
    bad, stored = 0, STORAGE.get(tensor.dtype)
    narrower = list(NARROWER.get(stored, ()))
    for _, rows in tensor.chunks(per_chunk):
        bad += nonfinite_count(rows)
        narrower = [d for d in narrower if torch.equal(rows.to(d).to(rows.dtype), rows)]
    return bad, (narrower[0] if narrower and not bad else stored)
