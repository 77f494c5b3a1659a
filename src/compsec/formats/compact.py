"""A compact stand-in for a preimage: what the deployment stores plus one bit per weight.

A :class:`~compsec.formats.base.Box` costs two storage-dtype tensors (4-8 bytes per parameter).  The box is a
function of the quantized tensor and of which weights are pinned, so :class:`CompactBox` keeps only

- the codes, packed by the format's bit width (``fmt.bits`` of 1, 2 or 4: two 4-bit codes per byte),
  else one byte (or the codes' own width) per code;
- the scales, as stored;
- the pinned mask, one bit per weight, or only one bit per *candidate* weight when the format can name the
  candidates from codes and scales (``pinned_candidates(q)``: e.g. NF4's extreme codes), which is far fewer;
- the pinned weights themselves (about one per block), in the storage dtype.

``.box()`` rebuilds the exact box on demand, through ``fmt.box_from_pinned(q, pinned, pinned_values)`` when the
format has it, else through ``fmt.box_from_quantized`` on a stand-in tensor (checked once at build time).  For
NF4 with 64-weight blocks: 0.5 (codes) + 0.0625 (absmax) + ~0.004 (one bit per extreme code) + ~0.03-0.06
(pinned weights, bf16-fp32) = ~0.6 bytes per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.formats.base import Box, Format, Quantized, snap_inward

_PACKABLE_BITS = (1, 2, 4)


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack the low ``bits`` of each integer into bytes, first value in the high bits (uint8, flat)."""
    per_byte = 8 // bits
    flat = (values.reshape(-1).to(torch.int16) & ((1 << bits) - 1)).to(torch.uint8)
    flat = torch.nn.functional.pad(flat, (0, (-flat.numel()) % per_byte))
    shifts = torch.arange(per_byte - 1, -1, -1, device=flat.device, dtype=torch.uint8) * bits
    return (flat.view(-1, per_byte) << shifts).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, count: int, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``count`` values of ``dtype`` (sign-extended when ``dtype`` is signed)."""
    per_byte = 8 // bits
    shifts = torch.arange(per_byte - 1, -1, -1, device=packed.device, dtype=torch.uint8) * bits
    flat = ((packed.view(-1, 1) >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].to(torch.int16)
    if dtype.is_signed:
        flat = torch.where(flat >= 1 << (bits - 1), flat - (1 << bits), flat)
    return flat.to(dtype)


def _pack_codes(codes: torch.Tensor, bits: int | None) -> tuple[torch.Tensor, int]:
    """(packed bytes, bits per code used); falls back to the raw bytes when the codes do not fit ``bits``."""
    if bits in _PACKABLE_BITS and codes.element_size() == 1 and not codes.is_floating_point():
        packed = pack_bits(codes, bits)
        if torch.equal(unpack_bits(packed, bits, codes.numel(), codes.dtype), codes.reshape(-1)):
            return packed, bits
    return codes.contiguous().reshape(-1).view(torch.uint8), 8 * codes.element_size()


def _candidates(fmt: Format, q: Quantized) -> torch.Tensor | None:
    """The format's superset of pinned weights named from codes and scales alone, or None if it has none."""
    name = getattr(fmt, "pinned_candidates", None)
    return None if name is None else name(q).reshape(q.shape)


def _nbytes(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


@dataclass(frozen=True, eq=False)
class CompactBox:
    """Codes, scales, pinned bits and pinned weights of one tensor; ``.box()`` is bit-identical to
    ``fmt.preimage(w, storage)``."""

    fmt: Format
    storage: torch.dtype
    quantized: Quantized
    packed_codes: torch.Tensor
    code_bits: int
    pinned_bits: torch.Tensor
    code_dtype: torch.dtype
    code_shape: tuple[int, ...]
    pinned_values: torch.Tensor
    sparse_mask: bool = False

    @classmethod
    def build(cls, fmt: Format, w: torch.Tensor, storage: torch.dtype) -> CompactBox:
        """Quantize ``w`` with ``fmt`` and keep what is needed to rebuild its box in ``storage`` dtype."""
        q = fmt.quantize(w)
        pinned = fmt.box_from_quantized(q, w).pinned
        packed, code_bits = _pack_codes(q.codes, getattr(fmt, "bits", None))
        values = w.to(storage)[pinned]
        light = Quantized(torch.empty(0, dtype=q.codes.dtype), q.scales, q.shape, q.dtype, dict(q.meta))
        candidates = _candidates(fmt, q)
        sparse = candidates is not None and not bool((pinned & ~candidates).any())
        bits = pack_bits(pinned[candidates] if sparse else pinned, 1)
        built = cls(fmt, storage, light, packed, code_bits, bits, q.codes.dtype, tuple(q.codes.shape), values,
                    sparse)
        if not hasattr(fmt, "box_from_pinned"):
            built._check_rebuilds(w)
        return built

    @property
    def numel(self) -> int:
        n = 1
        for d in self.quantized.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes held: packed codes, scales, pinned mask and (for some formats) pinned values."""
        scales = sum(_nbytes(s) for s in self.quantized.scales.values())
        return _nbytes(self.packed_codes) + scales + _nbytes(self.pinned_bits) + _nbytes(self.pinned_values)

    @property
    def bytes_per_param(self) -> float:
        return self.nbytes / max(self.numel, 1)

    def codes(self) -> torch.Tensor:
        """The unpacked codes, in the format's own dtype and shape."""
        count = 1
        for d in self.code_shape:
            count *= d
        if self.code_bits in _PACKABLE_BITS:
            flat = unpack_bits(self.packed_codes, self.code_bits, count, self.code_dtype)
        else:
            flat = self.packed_codes.view(self.code_dtype)
        return flat.view(self.code_shape)

    def pinned(self, q: Quantized) -> torch.Tensor:
        """Boolean mask of pinned weights, shape of the tensor (``q``: the quantized tensor with its codes)."""
        if not self.sparse_mask:
            return unpack_bits(self.pinned_bits, 1, self.numel, torch.uint8).bool().view(q.shape)
        candidates = _candidates(self.fmt, q)
        mask = torch.zeros(q.shape, dtype=torch.bool, device=candidates.device)
        mask[candidates] = unpack_bits(self.pinned_bits, 1, int(candidates.sum()), torch.uint8).bool()
        return mask

    def box(self) -> Box:
        """Rebuild the exact box (``lo``/``hi`` in the storage dtype)."""
        q = self.quantized
        full = Quantized(self.codes(), q.scales, q.shape, q.dtype, q.meta)
        pinned = self.pinned(full)
        if hasattr(self.fmt, "box_from_pinned"):
            return snap_inward(self.fmt.box_from_pinned(full, pinned, self.pinned_values), self.storage)
        # unpinned weights only need to look unpinned: dequantized values pulled slightly toward zero, so none
        # equals a block extreme (a bare dequantized top code can equal the abs-max exactly)
        hint = (self.fmt.dequantize(full).float() * (1 - 2**-8)).to(self.storage)
        hint[pinned] = self.pinned_values
        return snap_inward(self.fmt.box_from_quantized(full, hint), self.storage)

    def _check_rebuilds(self, w: torch.Tensor) -> None:
        want, got = self.fmt.preimage(w, self.storage), self.box()
        if not (torch.equal(want.lo, got.lo) and torch.equal(want.hi, got.hi)):
            raise ValueError(f"format {self.fmt.name!r} derives its box from more than codes, scales and pinned "
                             "weights; give it a box_from_pinned(q, pinned) method to support compact boxes")
