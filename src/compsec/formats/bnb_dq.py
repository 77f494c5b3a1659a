"""bitsandbytes 4-bit with nested (double-quantized) statistics: ``nf4-dq``, ``fp4-dq`` (``compress_statistics``).

``quantize_4bit(..., compress_statistics=True)`` (bitsandbytes 0.50 runs it on CPU) computes the 4-bit codes
with the float32 block abs-maxes exactly as plain NF4/FP4 does, then stores the abs-maxes compressed:
``offset = absmax.mean()``; ``absmax - offset`` quantized blockwise (256 per block) to 8-bit indices into
bitsandbytes' signed dynamic map, with one float32 abs-max per 256 (``state2.absmax``).

The CPU kernel (``quantize_cpu_impl`` in bitsandbytes' ``csrc/cpu_ops.cpp``, reached through
``cquantize_blockwise_cpu_fp32``) is reproduced in pure torch by :func:`quantize_blockwise_cpu`: it does not
search the code for the nearest value but reads a 65536-entry table indexed by ``v`` rounded to a grid of
step ``2 / 65535`` (so near a midpoint it may pick the farther code: 0.17 % of indices on random weights differ
from an exact nearest-code search, and compsec follows the kernel, not the search).

Scales: ``absmax`` (uint8 indices, one per 4-bit block), ``absmax2`` (float32, one per 256 blocks) and
``offset`` (float32 scalar).  The box is plain NF4/FP4's (:mod:`compsec.formats.bnb`): it pins every abs-max
element and keeps every float32 abs-max, so the nested statistics, a function of the abs-maxes alone, cannot
change either: it is sound for the nested deployment too (the contract tests check it against bitsandbytes'
nested output) and tight strictly inside each block's ``(-absmax, absmax)``.  It is not the whole preimage at
the abs-max itself: moving an abs-max element by an ulp changes the float32 abs-max but usually not its 8-bit
nested code, and then no 4-bit code either; the box stays pinned there (sound, not tight).  Re-quantizing
dequantized weights is not idempotent (the offset and nested codes of the dequantized abs-maxes differ);
it stays within a small fraction of the quantization error (``idempotent = False``, see the contract tests).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.formats import bnb_math as bm
from compsec.formats.base import Box, Quantized
from compsec.formats.bnb import Blockwise4bit
from compsec.formats.bnb_layers import linear4bit_quantize
from compsec.formats.compact import CompactBox
from compsec.formats.registry import register

NESTED_BLOCK = 256


LUT_SIZE = 65536


@functools.cache
def dynamic_code() -> torch.Tensor:
    """bitsandbytes' signed dynamic 8-bit map (256 ascending fp32 values, ``create_dynamic_map(signed=True)``)."""
    return bm.load_functional().create_dynamic_map(signed=True).float().cpu().clone()


@functools.cache
def code_lut() -> torch.Tensor:
    """``build_quantize_lut``: for each of 65536 grid values ``v_i = -1 + 2i / 65535`` (float32), the number of
    code midpoints ``0.5 * (c[j] + c[j + 1])`` strictly below it, int64 ``(65536,)``."""
    code = dynamic_code()
    midpoints = 0.5 * (code[:-1] + code[1:])
    grid = -1.0 + (2.0 * torch.arange(LUT_SIZE, dtype=torch.float32)) / (LUT_SIZE - 1)
    return torch.searchsorted(midpoints, grid, side="left")


def quantize_blockwise_cpu(x: torch.Tensor, blocksize: int = NESTED_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices uint8, absmax fp32)`` of flat float32 ``x``, as bitsandbytes' CPU ``quantize_blockwise``:
    ``v = clamp(x * (1 / absmax), -1, 1)``, index ``lut[trunc(((v + 1) * 0.5) * 65535 + 0.5)]``, all-zero
    blocks give index 0."""
    n = x.numel()
    blocks = torch.nn.functional.pad(x, (0, (-n) % blocksize)).view(-1, blocksize)
    absmax = blocks.abs().amax(dim=1)
    inv = (1.0 / absmax).unsqueeze(1)
    v = torch.clamp(blocks * inv, -1.0, 1.0)
    grid = torch.trunc(((v + 1.0) * 0.5) * (LUT_SIZE - 1) + 0.5)
    grid = torch.where(absmax.unsqueeze(1) == 0, torch.zeros_like(grid), grid)
    return code_lut().to(x.device)[grid.long().reshape(-1)[:n]].to(torch.uint8), absmax


def nested_stats(absmax: torch.Tensor) -> dict[str, torch.Tensor]:
    """The stored statistics of float32 block abs-maxes: ``absmax`` (uint8), ``absmax2``, ``offset``."""
    offset = absmax.mean()
    codes, absmax2 = quantize_blockwise_cpu(absmax - offset)
    return {"absmax": codes, "absmax2": absmax2, "offset": offset}


@dataclass(frozen=True)
class Blockwise4bitNested(Blockwise4bit):
    """NF4/FP4 whose abs-maxes are stored double-quantized (bitsandbytes' ``compress_statistics=True``)."""

    idempotent: ClassVar[bool] = False

    def plain(self) -> Blockwise4bit:
        """The same format with float32 abs-maxes: its box is this format's box."""
        return Blockwise4bit(name=self.quant_type, quant_type=self.quant_type, blocksize=self.blocksize)

    def quantize(self, w: torch.Tensor) -> Quantized:
        q = self.plain().quantize(w)
        return Quantized(q.codes, nested_stats(q.scales["absmax"]), q.shape, q.dtype)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        """Through the deployed layer: ``Linear4bit`` with ``Params4bit(w)`` (``compress_statistics=True``)."""
        bm.check_weights(w)
        codes, state = linear4bit_quantize(w, self.quant_type, self.blocksize, compress_statistics=True)
        scales = {"absmax": state.absmax, "absmax2": state.state2.absmax, "offset": state.offset.reshape(())}
        return Quantized(codes, scales, tuple(w.shape), w.dtype)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        absmax = dynamic_code()[q.scales["absmax"].long()]
        absmax = absmax * q.scales["absmax2"].repeat_interleave(NESTED_BLOCK)[: absmax.numel()]
        plain = Quantized(q.codes, {"absmax": absmax + q.scales["offset"]}, q.shape, q.dtype)
        return self.plain().dequantize(plain)

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        if not self.quantize(w).same_as(q):
            raise ValueError("these nested 4-bit statistics do not come from these weights; pass the quantized tensor")
        plain = self.plain()
        return plain.box_from_quantized(plain.quantize(w), w)

    def range_limits(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per weight, ``(-absmax, absmax)`` of its block: one float past it the 8-bit nested abs-max may absorb
        the move, so the box (which pins the abs-max) is only promised tight strictly inside."""
        absmax = self.plain().quantize(w).scales["absmax"]
        limit = absmax.repeat_interleave(self.blocksize)[: w.numel()].view(w.shape)
        return -limit, limit

    def compact_box(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> CompactBox:
        """The plain format's compact box (float32 abs-maxes instead of nested ones): the very same box."""
        return self.plain().compact_box(w, storage_dtype)


for _quant_type in ("nf4", "fp4"):
    register(Blockwise4bitNested(name=f"{_quant_type}-dq", quant_type=_quant_type))
