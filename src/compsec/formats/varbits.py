"""Variable-width bit packing: non-negative integers, each written with its own number of bits.

>>> import torch
>>> values, lengths = torch.tensor([5, 0, 1, 300]), torch.tensor([3, 0, 1, 9])
>>> packed = pack_varbits(values, lengths)
>>> packed.numel(), unpack_varbits(packed, lengths).tolist()
(2, [5, 0, 1, 300])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.cumsum(lengths) - lengths


def pack_varbits(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Write each ``values[i]`` (int, ``0 <= v < 2**lengths[i]``, lengths up to 62) in ``lengths[i]`` bits, most
    significant first, back to back; returns the bytes (uint8, flat, zero-padded to a whole byte)."""
    v = values.reshape(-1).long().numpy()
    n = lengths.reshape(-1).long().numpy()
    if v.shape != n.shape or (n < 0).any() or (n > 62).any() or (v < 0).any() or (v >> n).any():
        raise ValueError("pack_varbits needs one length (0-62) per value and values that fit their lengths")
    offsets, bits = _offsets(n), np.zeros(int(n.sum()), dtype=np.uint8)
    for b in range(int(n.max()) if n.size else 0):
        sel = n > b
        bits[offsets[sel] + b] = (v[sel] >> (n[sel] - 1 - b)) & 1
    return torch.from_numpy(np.packbits(bits))


def unpack_varbits(packed: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_varbits` given the same ``lengths``: int64 values, flat."""
    n = lengths.reshape(-1).long().numpy()
    bits = np.unpackbits(packed.numpy())[: int(n.sum())].astype(np.int64)
    offsets, v = _offsets(n), np.zeros(n.shape, dtype=np.int64)
    for b in range(int(n.max()) if n.size else 0):
        sel = n > b
        v[sel] = (v[sel] << 1) | bits[offsets[sel] + b]
    return torch.from_numpy(v)


@dataclass(frozen=True, eq=False)
class PackedInts:
    """An integer tensor as ``base`` plus ``width``-bit offsets (``width`` from the tensor's own range)."""

    data: torch.Tensor
    base: int
    width: int
    shape: tuple[int, ...]
    dtype: torch.dtype

    @classmethod
    def pack(cls, t: torch.Tensor) -> PackedInts:
        v = t.reshape(-1).long()
        base = int(v.min()) if v.numel() else 0
        width = int(v.max() - base).bit_length() if v.numel() else 0
        return cls(pack_varbits(v - base, torch.full_like(v, width)), base, width, tuple(t.shape), t.dtype)

    def unpack(self) -> torch.Tensor:
        count = int(torch.Size(self.shape).numel())
        v = unpack_varbits(self.data, torch.full((count,), self.width, dtype=torch.long)) + self.base
        return v.to(self.dtype).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        """The bits, plus ``width`` and ``base`` (:func:`header_bytes`); the shape is known to the reader."""
        return self.data.numel() + header_bytes(self.base)


def header_bytes(base: int) -> int:
    """Bytes charged for a packed stream's header: one byte (a bit width or a Rice shift) and ``base`` as a
    zigzag LEB128 varint."""
    return 1 + varint_bytes(2 * base if base >= 0 else -2 * base - 1)


def varint_bytes(value: int) -> int:
    """Bytes of ``value`` (non-negative) as an LEB128 varint: 7 bits per byte."""
    return max(1, -(-max(value, 0).bit_length() // 7))


def zigzag(v: torch.Tensor) -> torch.Tensor:
    """Signed int64 to non-negative: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return torch.where(v < 0, -2 * v - 1, 2 * v)


def unzigzag(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z % 2 == 1, -(z + 1) // 2, z // 2)


@dataclass(frozen=True, eq=False)
class RiceInts:
    """Small non-negative-after-``base`` integers (gaps between seeds, levels), Rice coded: each value's high part
    ``v >> shift`` in unary (``1...10``) in one stream, its low ``shift`` bits in another, ``shift`` picked for the
    smallest total; the unary stream splits at its zeros, so both decode without a sequential scan."""

    unary: torch.Tensor
    low: torch.Tensor
    base: int
    shift: int
    shape: tuple[int, ...]
    dtype: torch.dtype

    @classmethod
    def pack(cls, t: torch.Tensor) -> RiceInts:
        v = t.reshape(-1).long()
        base = int(v.min()) if v.numel() else 0
        v = v - base
        top = int(v.max()).bit_length() if v.numel() else 0        # at shift = top every high part is 0
        sizes = [int((v >> s).sum()) + v.numel() * (1 + s) for s in range(top + 1)]
        shift = min(range(len(sizes)), key=sizes.__getitem__)
        high = (v >> shift).numpy()
        bits = np.ones(int(high.sum()) + v.numel(), dtype=np.uint8)
        bits[np.cumsum(high + 1) - 1] = 0
        low = pack_varbits(v & ((1 << shift) - 1), torch.full_like(v, shift))
        return cls(torch.from_numpy(np.packbits(bits)), low, base, shift, tuple(t.shape), t.dtype)

    def unpack(self) -> torch.Tensor:
        count = int(torch.Size(self.shape).numel())
        zeros = np.flatnonzero(np.unpackbits(self.unary.numpy()) == 0)[:count]
        high = torch.from_numpy(np.diff(zeros, prepend=-1) - 1).long()
        low = unpack_varbits(self.low, torch.full((count,), self.shift, dtype=torch.long))
        return ((high << self.shift) + low + self.base).to(self.dtype).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        """Both streams, plus ``shift`` and ``base`` (:func:`header_bytes`)."""
        return self.unary.numel() + self.low.numel() + header_bytes(self.base)


def pack_ints(t: torch.Tensor) -> PackedInts | RiceInts:
    """Whichever of :class:`PackedInts` and :class:`RiceInts` holds ``t`` in fewer bytes."""
    fixed, rice = PackedInts.pack(t), RiceInts.pack(t)
    return rice if rice.nbytes < fixed.nbytes else fixed
