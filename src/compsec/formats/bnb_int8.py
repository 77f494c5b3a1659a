"""bitsandbytes LLM.int8() weight storage (``int8``) as the deployed layer stores it: row-wise abs-max of the
**float16** weights, exact boxes on the float32 grid.

``Linear8bitLt`` / ``Int8Params._quantize`` (what ``load_in_8bit=True`` runs, bitsandbytes 0.50) casts the weight
to float16 whatever its dtype, then runs ``int8_vectorwise_quant`` (:mod:`compsec.formats.bnb_math`).  So a float32
or bfloat16 checkpoint is stored as the codes of ``w.half()``: ``SCB`` is the float16 abs-max (as float32) and an
element is pinned when ``|w.half()|`` equals it.  The box of an unpinned element is every float32 value whose
float16 cast keeps its code (:mod:`compsec.formats.half_cast`); pinned elements keep ``lo == hi == w``
(any value casting to the same float16 abs-max would do as well, but the box pins scale-defining elements).
Weights with ``|w| >= 65520`` overflow float16 and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.formats import bnb_math as bm
from compsec.formats.base import Box, Format, Quantized
from compsec.formats.bnb_layers import linear8bitlt_quantize
from compsec.formats.float_edges import lower_edges, upper_edges
from compsec.formats.half_cast import check_half_range, half_interval, preimage_of_half


@dataclass(frozen=True)
class Int8Rowwise(Format):
    """LLM.int8() weight storage: one int8 code per weight of ``w.half()``, one abs-max per row (``SCB``, the
    float16 abs-max as float32)."""

    name: str = "int8"
    bits: int = 8
    family: ClassVar[str] = "bnb"

    def supports(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 2 and shape[0] > 0 and shape[1] > 0

    def _check(self, w: torch.Tensor) -> None:
        bm.check_weights(w)
        if not self.supports(tuple(w.shape)):
            raise ValueError(f"int8 quantizes 2-D (out, in) weight matrices, got shape {tuple(w.shape)}")
        check_half_range(self.name, w)

    def quantize(self, w: torch.Tensor) -> Quantized:
        self._check(w)
        half = w.half()
        absmax = torch.max(half.abs(), dim=1).values.float()
        codes = torch.round(half * (127.0 / absmax.unsqueeze(-1))).to(torch.int8)
        return Quantized(codes, {"absmax": absmax}, tuple(w.shape), w.dtype)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        """Through the deployed layer: ``Linear8bitLt`` with ``Int8Params(w)``, quantized on ``.to("cpu")``."""
        self._check(w)
        codes, absmax = linear8bitlt_quantize(w)
        return Quantized(codes, {"absmax": absmax}, tuple(w.shape), w.dtype)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        return q.codes * q.scales["absmax"].view(-1, 1) * bm.INT8_DEQUANT

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        absmax = q.scales["absmax"].view(-1, 1)
        pinned = w.half().float().abs() == absmax
        return self.box_from_pinned(q, pinned, w[pinned])

    def pinned_candidates(self, q: Quantized) -> torch.Tensor:
        """Weights that may be pinned, from codes and scales alone: codes ±127, and whole rows whose ``127/a``
        is not finite (abs-max 0 or below ~2.9e-39)."""
        degenerate = ~torch.isfinite(bm.int8_scale(q.scales["absmax"]))
        return (q.codes.abs() == 127) | degenerate

    def box_from_pinned(self, q: Quantized, pinned: torch.Tensor, pinned_values: torch.Tensor) -> Box:
        """The fp32 box from codes, scales, the pinned mask and the pinned weights (``w[pinned]``) alone.

        An unpinned element's interval depends only on its row and code, so the exact edges are found once per
        (row, code) pair (256 per row, see :func:`code_edge_table`): the float16 values keeping the code, then
        the float32 values casting to those; then gathered per element."""
        lo_table, hi_table = code_edge_table(q.scales["absmax"])
        lo16, hi16 = half_interval(lo_table.reshape(-1), hi_table.reshape(-1))
        lo_table, hi_table = (t.view(lo_table.shape) for t in preimage_of_half(lo16, hi16))
        index = q.codes.reshape(lo_table.shape[0], -1).long() + 128
        lo = lo_table.gather(1, index).reshape(-1)
        hi = hi_table.gather(1, index).reshape(-1)
        return bm.box_with_pinned(lo, hi, pinned, pinned_values, q.shape)


def code_edge_table(absmax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)``, each ``(rows, 256)`` fp32: for every row and code ``-128..127`` (column ``code + 128``), the
    exact float32 interval of weights keeping that code under the row's multiplier within ``[-absmax, absmax]``.

    Edges come from the algebraic threshold ``(code -+ 0.5) / (127 / a)`` verified with the real arithmetic
    (:mod:`compsec.formats.float_edges`); codes a row cannot hold get some value inside the row's range."""
    rows, levels = absmax.numel(), 256
    target = torch.arange(-128, 128, dtype=torch.int16, device=absmax.device).repeat(rows)
    limit = absmax.repeat_interleave(levels)
    scale = bm.int8_scale(absmax).reshape(-1).repeat_interleave(levels)   # the same fp32 multiplier per row

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
    return lo.view(rows, levels), hi.view(rows, levels)
