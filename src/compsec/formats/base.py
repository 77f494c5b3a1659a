"""The contract every quantization format fulfils, and the two value types it speaks in.

A *format* maps a full-precision weight tensor ``w`` to what a deployment stores (:class:`Quantized`: integer
codes plus per-block scales) and back.  Its *preimage* (:class:`Box`) is the exact set of tensors that map to the
same stored codes **and** scales: every ``w'`` with ``lo <= w' <= hi`` elementwise (and representable in the
storage dtype) quantizes identically.  Elements that define a scale (a block's abs-max, a group's min/max) are
*pinned*: ``lo == hi``.

Each format implements four things:

- ``quantize(w)``            our pure-torch implementation (fast, runs on any device);
- ``reference_quantize(w)``  the same through the real library users deploy (bitsandbytes, gguf, ...), used as
                             the oracle by the contract tests;
- ``dequantize(q)``          the tensor a deployment computes with;
- ``box_from_quantized(q, w)`` the preimage of ``q``; ``w`` is only used to know which elements are pinned.

``preimage``, ``positions`` and ``compact_box`` are derived here and shared by all formats.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from compsec.formats.compact import CompactBox

STORAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True, eq=False)
class Quantized:
    """What a format stores for one tensor.

    ``codes``: integer codes, one per weight, in the format's own layout (unpacked, ``torch.uint8`` or
    ``torch.int8``); ``scales``: named per-block tensors (e.g. ``{"absmax": ...}`` or ``{"d": ..., "m": ...}``);
    ``shape``/``dtype``: of the tensor that was quantized.
    """

    codes: torch.Tensor
    scales: dict[str, torch.Tensor]
    shape: tuple[int, ...]
    dtype: torch.dtype
    meta: dict = field(default_factory=dict)

    def same_as(self, other: Quantized) -> bool:
        """True when codes and every scale are bit-identical (NaN-safe; -0.0 differs from +0.0)."""
        if self.shape != tuple(other.shape) or set(self.scales) != set(other.scales):
            return False
        if not _bits_equal(self.codes, other.codes):
            return False
        return all(_bits_equal(self.scales[k], other.scales[k]) for k in self.scales)

    def mismatch(self, other: Quantized) -> str | None:
        """One line describing the first difference from ``other``, or None when they are identical."""
        if self.shape != tuple(other.shape):
            return f"shape {self.shape} != {tuple(other.shape)}"
        if not _bits_equal(self.codes, other.codes):
            n = int((self.codes.reshape(-1).long() != other.codes.reshape(-1).long()).sum())
            return f"{n} codes differ"
        for k in self.scales:
            if k not in other.scales or not _bits_equal(self.scales[k], other.scales[k]):
                return f"scale '{k}' differs"
        return None


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach().cpu().contiguous(), b.detach().cpu().contiguous()
    if a.shape != b.shape and a.numel() == b.numel():
        b = b.reshape(a.shape)
    if a.shape != b.shape:
        return False
    if a.is_floating_point() or b.is_floating_point():
        if a.dtype != b.dtype:
            return False
        return bool(torch.equal(a.view(_int_view(a.dtype)), b.view(_int_view(b.dtype))))
    return bool(torch.equal(a.long(), b.long()))


def _int_view(dtype: torch.dtype) -> torch.dtype:
    return {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
            torch.float64: torch.int64}[dtype]


@dataclass(frozen=True, eq=False)
class Box:
    """Elementwise interval ``[lo, hi]`` around a weight tensor; ``lo``/``hi`` have the weight's shape."""

    lo: torch.Tensor
    hi: torch.Tensor

    @property
    def pinned(self) -> torch.Tensor:
        """Boolean mask of zero-width intervals (elements that define a scale)."""
        return self.lo == self.hi

    @property
    def width(self) -> torch.Tensor:
        return self.hi.float() - self.lo.float()

    def contains(self, w: torch.Tensor) -> bool:
        """True when every element of ``w`` lies in its interval."""
        return bool(((w >= self.lo) & (w <= self.hi)).all())

    def clamp_(self, w: torch.Tensor) -> torch.Tensor:
        """Project ``w`` into the box in place (one fused kernel per bound) and return it."""
        return torch.clamp_(w, min=self.lo, max=self.hi)

    def intersect(self, other: Box) -> Box:
        """The box of weights that keep both quantizations; raises if the intervals do not overlap."""
        lo, hi = torch.maximum(self.lo, other.lo), torch.minimum(self.hi, other.hi)
        if bool((lo > hi).any()):
            raise ValueError("boxes do not overlap: these weights were not quantized from one tensor")
        return Box(lo, hi)

    def positions(self, w: torch.Tensor) -> torch.Tensor:
        """Where each element of ``w`` sits in its interval, as float32 (0 lower edge, 1 upper, NaN pinned)."""
        lo, hi, x = self.lo.float(), self.hi.float(), w.float()
        pos = (x - lo) / (hi - lo)
        return torch.where(hi > lo, pos, torch.full_like(pos, float("nan")))


class Format(abc.ABC):
    """A quantization format: subclasses are frozen dataclasses holding the format's parameters.

    Subclasses set ``family`` and are registered (as configured instances) with
    :func:`compsec.formats.registry.register` under a unique lower-case ``name``.
    """

    family: ClassVar[str] = ""
    name: str

    @abc.abstractmethod
    def quantize(self, w: torch.Tensor) -> Quantized:
        """Quantize ``w`` (fp32/fp16/bf16, any device) with compsec's own pure-torch arithmetic."""

    @abc.abstractmethod
    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        """Quantize ``w`` with the real library users deploy; must be bit-identical to :meth:`quantize`."""

    @abc.abstractmethod
    def dequantize(self, q: Quantized) -> torch.Tensor:
        """The weights a deployment computes with, shape ``q.shape``, float32."""

    @abc.abstractmethod
    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        """The exact fp32 preimage of ``q``; ``w`` (a tensor that quantizes to ``q``) marks the pinned elements."""

    def supports(self, shape: tuple[int, ...]) -> bool:
        """Whether a tensor of this shape can be stored in this format (e.g. rows a multiple of the block)."""
        return len(shape) >= 1

    def preimage(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> Box:
        """Exact box around ``w``: every ``w'`` in ``[lo, hi]`` representable in ``storage_dtype`` quantizes to
        the same codes and scales.  ``lo``/``hi`` are returned in ``storage_dtype`` (default ``w.dtype``)."""
        storage = storage_dtype or w.dtype
        check_storage(w, storage)
        box = self.box_from_quantized(self.quantize(w), w)
        return snap_inward(box, storage)

    def positions(self, w: torch.Tensor) -> torch.Tensor:
        """Position of each weight in its interval: 0 lower edge, 1 upper edge, NaN for pinned elements."""
        return self.preimage(w).positions(w)

    def compact_box(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> CompactBox:
        """A small stand-in for :meth:`preimage` (codes, scales and the pinned mask) that rebuilds the box."""
        from compsec.formats.compact import CompactBox

        storage = storage_dtype or w.dtype
        check_storage(w, storage)
        return CompactBox.build(self, w, storage)


FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def require_finite(name: str, w: torch.Tensor, floats_only: bool = False) -> None:
    """ValueError unless every element of ``w`` is finite (and, with ``floats_only``, ``w`` is fp32/fp16/bf16)."""
    if floats_only and w.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} quantizes float32/float16/bfloat16 weights, got {w.dtype}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} cannot quantize NaN or Inf weights; clean the tensor first")


def check_storage(w: torch.Tensor, storage: torch.dtype) -> None:
    """Reject inputs a box cannot be computed for (non-finite values, weights not representable in storage)."""
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype {storage} is not supported; use one of float32, float16, bfloat16")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("tensor contains NaN or Inf; a quantization box is only defined for finite weights")
    if storage != w.dtype and not torch.equal(w.to(storage).to(w.dtype), w):
        raise ValueError(f"weights are not representable in {storage}; cast the model to {storage} first")


def snap_inward(box: Box, storage: torch.dtype) -> Box:
    """Round ``lo`` up and ``hi`` down to values representable in ``storage`` (the box can only shrink)."""
    lo = round_toward(box.lo, storage, up=True)
    hi = round_toward(box.hi, storage, up=False)
    return Box(lo, hi)


def round_toward(x: torch.Tensor, dtype: torch.dtype, up: bool) -> torch.Tensor:
    """Nearest value of ``dtype`` that is >= ``x`` (``up``) or <= ``x``, computed exactly from float32."""
    x32 = x.float()
    y = x32.to(dtype)
    y32 = y.float()
    wrong = (y32 < x32) if up else (y32 > x32)
    if bool(wrong.any()):
        target = torch.full_like(y, float("inf") if up else float("-inf"))
        y = torch.where(wrong, torch.nextafter(y, target), y)
    return y
