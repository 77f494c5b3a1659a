"""bitsandbytes formats: LLM.int8() (``int8``) and 4-bit NF4/FP4 (``nf4``, ``fp4``, ``-b128``/``-b256``).

Quantization is reproduced bit for bit from what the deployed layers store (``Linear8bitLt`` / ``Int8Params``,
``Linear4bit`` / ``Params4bit``, see :mod:`compsec.formats.bnb_layers`, which are the contract tests' oracle) and
the library's own arithmetic (see :mod:`compsec.formats.bnb_math`); boxes are exact on the float32 grid (see
:mod:`compsec.formats.float_edges`): an element's interval is every float32 value that keeps its code under the
unchanged block scale and does not exceed the block's abs-max; abs-max elements are pinned.  4-bit computes in
fp32 for fp16/bf16 inputs too, so snapping the fp32 box to the storage dtype (``Format.preimage``) is exact for
every storage dtype.  ``int8`` quantizes the float16 cast of every input (:mod:`compsec.formats.bnb_int8`).

Double-quantised statistics (``compress_statistics=True``) are the ``nf4-dq`` / ``fp4-dq`` formats of
:mod:`compsec.formats.bnb_dq`, which reproduces bitsandbytes' 65536-entry lookup table for the nested abs-maxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.formats import bnb_math as bm
from compsec.formats.base import Box, Format, Quantized
from compsec.formats.bnb_int8 import Int8Rowwise
from compsec.formats.bnb_layers import linear4bit_quantize
from compsec.formats.float_edges import lower_edges, upper_edges
from compsec.formats.registry import register

_BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)


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
        bm.check_weights(w)
        flat = w.reshape(-1).float()
        absmax = bm.absmax_4bit(flat, self.blocksize)
        bounds, order = bm.bucket_bounds(self.quant_type)
        buckets = bm.buckets_4bit(flat, absmax, self.blocksize, bounds.to(w.device))
        codes = order.to(w.device)[buckets].to(torch.uint8)
        return Quantized(codes.view(w.shape), {"absmax": absmax}, tuple(w.shape), w.dtype)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        """Through the deployed layer: ``Linear4bit`` with ``Params4bit(w, compress_statistics=False)``."""
        bm.check_weights(w)
        codes, state = linear4bit_quantize(w, self.quant_type, self.blocksize, compress_statistics=False)
        return Quantized(codes, {"absmax": state.absmax}, tuple(w.shape), w.dtype)

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
        """The fp32 box from codes, scales, the pinned mask and the pinned weights (``w[pinned]``) alone.

        An unpinned element's interval depends only on its block and bucket, so the exact edges are found once
        per (block, bucket) pair (16 per block, see :func:`bucket_edge_table`) and gathered per element."""
        n = q.codes.numel()
        _, order = bm.bucket_bounds(self.quant_type)
        bucket = torch.argsort(order).to(q.codes.device)[q.codes.reshape(-1).long()]
        lo_table, hi_table = bucket_edge_table(q.scales["absmax"], self.quant_type, n % self.blocksize != 0)
        blocks = lo_table.shape[0]
        index = torch.nn.functional.pad(bucket, (0, blocks * self.blocksize - n)).view(blocks, self.blocksize)
        lo = lo_table.gather(1, index).reshape(-1)[:n]
        hi = hi_table.gather(1, index).reshape(-1)[:n]
        return bm.box_with_pinned(lo, hi, pinned, pinned_values, q.shape)


def bucket_edge_table(absmax: torch.Tensor, quant_type: str, has_tail: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)``, each ``(blocks, 16)`` fp32: for every block and bucket, the exact float32 interval of weights
    that land in that bucket under the block's stored abs-max and stay within ``[-absmax, absmax]``.

    Edges come from the algebraic threshold (midpoint / multiplier) verified with the real arithmetic
    (:mod:`compsec.formats.float_edges`); ``has_tail``: the last block is partial (bitsandbytes divides there)."""
    bounds, _ = (t.to(absmax.device) for t in bm.bucket_bounds(quant_type))
    blocks, levels = absmax.numel(), bounds.numel() + 1
    inf = bounds.new_tensor([float("inf")])
    edges = torch.cat([-inf, bounds, inf])          # bucket b holds scaled values in (edges[b], edges[b+1]]
    floor_edge, ceil_edge = edges[:-1].repeat(blocks), edges[1:].repeat(blocks)
    limit = absmax.repeat_interleave(levels)
    recip = (1.0 / absmax.clamp(min=bm.TINY_ABSMAX)).repeat_interleave(levels)
    in_tail = torch.zeros_like(limit, dtype=torch.bool)
    if has_tail:
        in_tail[-levels:] = True

    def scaled(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        if idx is None:
            return bm.scale_4bit_at(x, recip, in_tail, absmax[-1])
        return bm.scale_4bit_at(x, recip[idx], in_tail[idx], absmax[-1])

    def at_least(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return scaled(x, idx) > (floor_edge if idx is None else floor_edge[idx])

    def at_most(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return scaled(x, idx) <= (ceil_edge if idx is None else ceil_edge[idx])

    lo = lower_edges(at_least, -limit, limit, torch.nextafter(floor_edge / recip, limit))
    hi = upper_edges(at_most, -limit, limit, ceil_edge / recip)
    return lo.view(blocks, levels), hi.view(blocks, levels)


register(Int8Rowwise())
for _quant_type in ("nf4", "fp4"):
    register(Blockwise4bit(name=_quant_type, quant_type=_quant_type))
    for _blocksize in (128, 256):
        register(Blockwise4bit(name=f"{_quant_type}-b{_blocksize}", quant_type=_quant_type, blocksize=_blocksize))
