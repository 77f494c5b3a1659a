"""bitsandbytes formats: LLM.int8() (``int8``) and 4-bit NF4/FP4 (``nf4``, ``fp4``, ``-b128``/``-b256``).

Quantization is reproduced bit for bit from the library's own arithmetic (see :mod:`compsec.formats.bnb_math`);
boxes are exact on the float32 grid (see :mod:`compsec.formats.float_edges`): an element's interval is every
float32 value that keeps its code under the unchanged block scale and does not exceed the block's abs-max;
abs-max elements are pinned.  bitsandbytes computes in fp32 for fp16/bf16 inputs too, so snapping the fp32 box
to the storage dtype (``Format.preimage``) is exact for every storage dtype.

Double-quantised statistics (``compress_statistics=True``) are not registered: see the module report in
``tests/formats/test_bnb.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.errors import MissingDependencyError
from compsec.formats import bnb_math as bm
from compsec.formats.base import Box, Format, Quantized
from compsec.formats.float_edges import lower_edges, upper_edges
from compsec.formats.registry import register

_BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)


def _functional():
    try:
        import bitsandbytes.functional as bnb_functional
    except ImportError as err:
        raise MissingDependencyError("bitsandbytes", purpose="the bitsandbytes reference quantizer") from err
    return bnb_functional


def _check_input(w: torch.Tensor) -> None:
    if w.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"bitsandbytes quantizes float32/float16/bfloat16 weights, got {w.dtype}; cast first")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("tensor contains NaN or Inf; bitsandbytes would store garbage for it, fix the weights")


@dataclass(frozen=True)
class Int8Rowwise(Format):
    """LLM.int8() weight storage: one int8 code per weight, one fp32 abs-max per row (``SCB``)."""

    name: str = "int8"
    bits: int = 8
    family: ClassVar[str] = "bnb"

    def supports(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 2 and shape[0] > 0 and shape[1] > 0

    def _check(self, w: torch.Tensor) -> None:
        _check_input(w)
        if not self.supports(tuple(w.shape)):
            raise ValueError(f"int8 quantizes 2-D (out, in) weight matrices, got shape {tuple(w.shape)}")

    def quantize(self, w: torch.Tensor) -> Quantized:
        self._check(w)
        absmax = torch.max(w.abs(), dim=1).values.float()
        codes = torch.round(w * (127.0 / absmax.unsqueeze(-1))).to(torch.int8)
        return Quantized(codes, {"absmax": absmax}, tuple(w.shape), w.dtype)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        self._check(w)
        codes, absmax, _ = _functional().int8_vectorwise_quant(w.clone(), threshold=0.0)
        return Quantized(codes, {"absmax": absmax}, tuple(w.shape), w.dtype)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        return q.codes * q.scales["absmax"].view(-1, 1) * bm.INT8_DEQUANT

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        absmax = q.scales["absmax"].view(-1, 1)
        pinned = w.float().abs() == absmax
        return self.box_from_pinned(q, pinned, w[pinned])

    def pinned_candidates(self, q: Quantized) -> torch.Tensor:
        """Weights that may be pinned, from codes and scales alone: codes ±127, and whole rows whose ``127/a``
        is not finite (abs-max 0 or below ~2.9e-39)."""
        degenerate = ~torch.isfinite(bm.int8_scale(q.scales["absmax"]))
        return (q.codes.abs() == 127) | degenerate

    def box_from_pinned(self, q: Quantized, pinned: torch.Tensor, pinned_values: torch.Tensor) -> Box:
        """The fp32 box from codes, scales, the pinned mask and the pinned weights (``w[pinned]``) alone."""
        cols = q.shape[1]
        absmax = q.scales["absmax"]
        target = q.codes.reshape(-1).to(torch.int16)
        limit = absmax.repeat_interleave(cols)
        scale = bm.int8_scale(absmax).reshape(-1).repeat_interleave(cols)   # the same fp32 multiplier per row

        def at_least(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
            if idx is None:
                return bm.int8_codes_at(x, scale) >= target
            return bm.int8_codes_at(x, scale[idx]) >= target[idx]

        def at_most(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
            if idx is None:
                return bm.int8_codes_at(x, scale) <= target
            return bm.int8_codes_at(x, scale[idx]) <= target[idx]

        # half-way points round to even: an odd code starts one float above (t - 0.5)/s and ends one below
        odd = target % 2 != 0
        low, high = (target - 0.5) / scale, (target + 0.5) / scale
        lo = lower_edges(at_least, -limit, limit, torch.where(odd, torch.nextafter(low, limit), low))
        hi = upper_edges(at_most, -limit, limit, torch.where(odd, torch.nextafter(high, -limit), high))
        return _pinned_box(lo, hi, pinned, pinned_values, q.shape)


def _pinned_box(lo: torch.Tensor, hi: torch.Tensor, pinned: torch.Tensor, values: torch.Tensor,
                shape: tuple[int, ...]) -> Box:
    """Flat edges ``lo``/``hi`` with the pinned weights set to their own values, shaped ``shape``."""
    mask = pinned.reshape(-1)
    lo[mask] = values.float()
    hi[mask] = values.float()
    return Box(lo.view(shape), hi.view(shape))


@dataclass(frozen=True)
class Blockwise4bit(Format):
    """bitsandbytes 4-bit storage (NF4 or FP4): a 4-bit code per weight, an fp32 abs-max per flat block."""

    name: str = "nf4"
    quant_type: str = "nf4"
    blocksize: int = 64
    bits: int = 4
    family: ClassVar[str] = "bnb"

    def __post_init__(self) -> None:
        if self.blocksize not in _BLOCKSIZES:
            raise ValueError(f"blocksize {self.blocksize} is not one bitsandbytes accepts; use one of {_BLOCKSIZES}")
        bm.code_table(self.quant_type)

    def supports(self, shape: tuple[int, ...]) -> bool:
        return len(shape) >= 1 and all(d > 0 for d in shape)

    def quantize(self, w: torch.Tensor) -> Quantized:
        _check_input(w)
        flat = w.reshape(-1).float()
        absmax = bm.absmax_4bit(flat, self.blocksize)
        bounds, order = bm.bucket_bounds(self.quant_type)
        buckets = bm.buckets_4bit(flat, absmax, self.blocksize, bounds.to(w.device))
        codes = order.to(w.device)[buckets].to(torch.uint8)
        return Quantized(codes.view(w.shape), {"absmax": absmax}, tuple(w.shape), w.dtype)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        _check_input(w)
        packed, state = _functional().quantize_4bit(w, blocksize=self.blocksize, quant_type=self.quant_type)
        packed = packed.reshape(-1)
        codes = torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)[: w.numel()]
        return Quantized(codes.view(w.shape), {"absmax": state.absmax}, tuple(w.shape), w.dtype)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        values = bm.code_table(self.quant_type).to(q.codes.device)[q.codes.reshape(-1).long()]
        absmax = q.scales["absmax"]
        per_element = absmax.repeat_interleave(self.blocksize)[: values.numel()]
        return (values * per_element).view(q.shape)

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        limit = q.scales["absmax"].repeat_interleave(self.blocksize)[: w.numel()].view(w.shape)
        pinned = w.float().abs() == limit
        return self.box_from_pinned(q, pinned, w[pinned])

    def pinned_candidates(self, q: Quantized) -> torch.Tensor:
        """Weights that may be pinned, from codes and scales alone: the two extreme buckets (an abs-max scales to
        about ±1), and whole blocks with abs-max below 1e-38 (their multiplier is clamped, or they are zero)."""
        _, order = bm.bucket_bounds(self.quant_type)
        extreme = (q.codes == order[0].item()) | (q.codes == order[-1].item())
        tiny = (q.scales["absmax"] < bm.TINY_ABSMAX).repeat_interleave(self.blocksize)[: q.codes.numel()]
        return extreme | tiny.view(q.shape)

    def box_from_pinned(self, q: Quantized, pinned: torch.Tensor, pinned_values: torch.Tensor) -> Box:
        """The fp32 box from codes, scales, the pinned mask and the pinned weights (``w[pinned]``) alone."""
        n = q.codes.numel()
        absmax = q.scales["absmax"]
        bounds, order = (t.to(q.codes.device) for t in bm.bucket_bounds(self.quant_type))
        bucket = torch.argsort(order)[q.codes.reshape(-1).long()]
        limit = absmax.repeat_interleave(self.blocksize)[:n]
        inf = bounds.new_tensor([float("inf")])
        edges = torch.cat([-inf, bounds, inf])          # bucket b holds scaled values in (edges[b], edges[b+1]]
        floor_edge, ceil_edge = edges[bucket], edges[bucket + 1]

        recip = (1.0 / absmax.clamp(min=bm.TINY_ABSMAX)).repeat_interleave(self.blocksize)[:n]
        tail_start = n - n % self.blocksize

        def scaled(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
            if idx is None:
                return bm.scale_4bit(x, absmax, self.blocksize, clamp=False)
            return bm.scale_4bit_at(x, recip[idx], idx >= tail_start, absmax[-1])

        def at_least(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
            return scaled(x, idx) > (floor_edge if idx is None else floor_edge[idx])

        def at_most(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
            return scaled(x, idx) <= (ceil_edge if idx is None else ceil_edge[idx])

        lo = lower_edges(at_least, -limit, limit, torch.nextafter(floor_edge / recip, limit))
        hi = upper_edges(at_most, -limit, limit, ceil_edge / recip)
        return _pinned_box(lo, hi, pinned, pinned_values, q.shape)


register(Int8Rowwise())
for _quant_type in ("nf4", "fp4"):
    register(Blockwise4bit(name=_quant_type, quant_type=_quant_type))
    for _blocksize in (128, 256):
        register(Blockwise4bit(name=f"{_quant_type}-b{_blocksize}", quant_type=_quant_type, blocksize=_blocksize))
