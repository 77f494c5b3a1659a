"""Round-to-nearest int-k weights as optimum-quanto computes them: ``int8-rtn``, ``int4-rtn``, ``int3-rtn``, ``int2-rtn``.

Arithmetic: :mod:`compsec.formats.rtn_math`; oracle: optimum-quanto (``AbsmaxOptimizer``/``MaxOptimizer`` and
``quantize_weight``, or the ``quanto::quantize_affine`` op for 3 bits, which quanto ships no qtype for).  Quanto
computes in the weight dtype; the registered formats quantize the float32 upcast (what quanto does on a float32
model).  ``native=True`` reproduces quanto on float16/bfloat16 weights bit-exactly too, but it is not registered:
re-quantizing its dequantized weights moves scales by float16/bfloat16 rounding, which the registry's round-trip
contract (rtol 1e-5) rejects.  Boxes are computed for weights already cast to the storage dtype.

Box: the element intervals keeping each code under the unchanged ``scale`` (and ``shift``), found once per (group,
code) pair from the algebraic threshold verified with the real arithmetic (float-grid search where it is off).
Pinned: elements at the largest code of their row/group (they reach the max, whose float rounding into ``scale`` a
box cannot track), in affine groups the elements equal to ``min = -shift`` (and every
code-0 element when ``min`` is zero), and whole groups with a zero or non-finite scale.  The lower edge of an
affine group is ``min`` itself: one step below changes the stored ``shift``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.errors import MissingDependencyError
from compsec.formats import rtn_math as rm
from compsec.formats.base import Box, Format, Quantized, check_storage, require_finite
from compsec.formats.float_grid import furthest_true, half_gap_below, refine_threshold
from compsec.formats.registry import register

_FMAX = torch.finfo(torch.float32).max


@dataclass(frozen=True, eq=False)
class RoundToNearest(Format):
    """``bits``-bit round-to-nearest; ``group`` None = symmetric per output row (8 bits), else affine groups.

    ``native``: compute in the weight's own dtype, as quanto does on a float16/bfloat16 model (not registered:
    quanto's float16/bfloat16 arithmetic is not idempotent, see the module docs); default: on the float32 upcast.
    """

    name: str
    bits: int
    group: int | None
    native: bool = False
    family: ClassVar[str] = "rtn"

    def supports(self, shape: tuple[int, ...]) -> bool:
        if len(shape) < 2 or shape[0] < 2:
            return False
        cols = 1
        for d in shape[1:]:
            cols *= d
        return self.group is None or (cols % self.group == 0 and cols >= self.group)

    def _grouped(self, w: torch.Tensor) -> torch.Tensor:
        if not self.supports(tuple(w.shape)):
            need = "" if self.group is None else f" and rows of a multiple of {self.group} weights"
            raise ValueError(f"{self.name} needs a tensor with at least 2 output rows{need}, got {tuple(w.shape)}")
        require_finite(self.name, w)
        x = w.detach() if self.native else w.detach().float()
        return x.reshape(-1, self.group) if self.group else x.reshape(w.shape[0], -1)

    def _pack(self, codes: torch.Tensor, scales: dict, w: torch.Tensor) -> Quantized:
        return Quantized(codes.reshape(w.shape), scales, tuple(w.shape), w.dtype, {"bits": self.bits})

    def quantize(self, w: torch.Tensor) -> Quantized:
        g = self._grouped(w)
        if self.group is None:
            scale = rm.sym_scale(g)
            return self._pack(rm.to_code_dtype(rm.sym_codes(g, scale), True), {"scale": scale}, w)
        scale, shift = rm.affine_params(g, self.bits)
        codes = rm.to_code_dtype(rm.affine_codes(g, scale, shift, self.bits), False)
        return self._pack(codes, {"scale": scale, "shift": shift}, w)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        g = self._grouped(w)
        codes, scales = _quanto_quantize(g.reshape(w.shape), self.bits, self.group)
        return self._pack(codes, scales, w)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        scale = q.scales["scale"]
        g = q.codes.reshape(scale.shape[0], -1).to(scale.dtype)
        out = scale * g if self.group is None else scale * g - q.scales["shift"]
        return out.float().reshape(q.shape)

    def preimage(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> Box:
        """As :meth:`Format.preimage`, quantizing ``w`` cast to ``storage_dtype`` (quanto's arithmetic dtype)."""
        storage = storage_dtype or w.dtype
        check_storage(w, storage)
        return super().preimage(w.to(storage), storage)

    def compact_box(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None):
        storage = storage_dtype or w.dtype
        check_storage(w, storage)
        return super().compact_box(w.to(storage), storage)

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        g = self._grouped(w).to(q.scales["scale"].dtype)
        lo, hi = group_box(g, q, self.bits, self.group is None)
        return Box(lo.reshape(w.shape), hi.reshape(w.shape))


def group_box(g: torch.Tensor, q: Quantized, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` float32 for weights ``g`` ``(n_groups, group)`` (storage dtype) quantized to ``q``."""
    scale = q.scales["scale"]
    shift = torch.zeros_like(scale) if symmetric else q.scales["shift"]
    codes = q.codes.reshape(g.shape).float()
    code_of = (lambda x, s, h: rm.sym_codes(x, s)) if symmetric else (lambda x, s, h: rm.affine_codes(x, s, h, bits))
    top = codes.abs().amax(-1, keepdim=True)
    pinned = (codes.abs() == top) | ~torch.isfinite(scale) | (scale == 0)
    if not symmetric:
        pinned |= (codes == 0) & ((g == -shift) | (shift == 0))
    s32, h32, x = scale.float(), shift.float(), g.float()
    deq = (scale * codes.to(scale.dtype) - shift).float()
    start = torch.where(code_of(x, scale, shift) == codes, x, deq)
    start = torch.where(pinned | (code_of(start, scale, shift) == codes), start, codes * s32 - h32)
    if not bool((code_of(start, scale, shift) == codes)[~pinned].all()):
        raise ValueError("the quantized codes do not come from these weights; pass the tensor that was quantized")
    lo_table, hi_table, column = edge_tables(start, pinned, codes, scale, shift, code_of, bits, symmetric)
    lo, hi = lo_table.gather(1, column), hi_table.gather(1, column)
    return torch.where(pinned, x, lo), torch.where(pinned, x, hi)


def edge_tables(start: torch.Tensor, pinned: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
                shift: torch.Tensor, code_of, bits: int, symmetric: bool):
    """``(lo, hi, column)``: exact edges for every (group, code) pair, ``(n_groups, levels)`` float32, and each
    element's column in them.  An unpinned element's interval depends only on its group and code, so edges are
    found once per pair, from a point holding the code (an element's ``start``, else the dequantized code)."""
    first, levels = (-128, 256) if symmetric else (0, 2**bits)
    column = (codes - first).long().clamp_(0, levels - 1)
    table_codes = (torch.arange(levels, device=codes.device) + first).float().expand(codes.shape[0], levels)
    picked = torch.full((codes.shape[0], levels + 1), float("-inf"), device=codes.device)
    picked.scatter_reduce_(1, torch.where(pinned, levels, column), start, "amax")
    deq = (scale * table_codes.to(scale.dtype) - shift).float()
    table_start = torch.where(picked[:, :levels] > float("-inf"), picked[:, :levels], deq)
    flat_s, flat_h, flat_c = (t.expand(table_codes.shape).reshape(-1) for t in (scale, shift, table_codes))

    def keeps(v: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:
        if sel is None:
            return code_of(v.view(table_codes.shape), scale, shift).reshape(-1) == flat_c
        return code_of(v, flat_s[sel], flat_h[sel]) == flat_c[sel]

    e1, e2 = code_threshold(table_codes, scale, shift), code_threshold(table_codes + 1, scale, shift)
    floor = torch.full_like(table_start, -_FMAX) if symmetric else (-shift.float()).expand_as(table_start)
    lo = furthest_true(keeps, table_start, floor, e1)
    hi = furthest_true(keeps, table_start, torch.full_like(table_start, _FMAX), e2)
    return lo, hi, column


def code_threshold(t: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Estimate (float32, within an ulp or so) of the smallest weight whose code is at least ``t``.

    ``round(y)`` reaches ``t`` at ``y = t - 0.5``; ``y = fl(z / scale)`` there at ``z ~ y * scale``, placed on
    the float grid with the real arithmetic; ``fl(x + shift) >= z`` from ``x = z - shift - half_gap_below(z)``.
    :func:`furthest_true` settles the remaining ulp or two (and anything this misses, e.g. float16 scales)."""
    z = ((t.double() - 0.5) * scale.double()).float()
    z = refine_threshold(lambda v: torch.round(v.to(scale.dtype) / scale).float() >= t, z)
    return (z.double() - shift.double() - half_gap_below(z)).float()


def _quanto_quantize(w: torch.Tensor, bits: int, group: int | None) -> tuple[torch.Tensor, dict]:
    """Codes and scales from optimum-quanto itself (the deployed library), on the CPU."""
    try:
        from optimum.quanto import qint2, qint4, qint8
        from optimum.quanto.tensor.optimizers import AbsmaxOptimizer, MaxOptimizer
        from optimum.quanto.tensor.qtype import qint
        from optimum.quanto.tensor.weights import quantize_weight
    except ImportError as err:
        raise MissingDependencyError("optimum-quanto", purpose="the round-to-nearest reference quantizer") from err
    w = w.cpu()
    if group is None:
        scale = AbsmaxOptimizer()(w, qtype=qint8, axis=0)
        t = quantize_weight(w, qtype=qint8, axis=0, scale=scale, optimized=False)
        return t._data, {"scale": t._scale.reshape(w.shape[0], 1)}
    qtype = {2: qint2, 4: qint4}.get(bits) or qint(bits)
    scale, shift = MaxOptimizer()(w, qtype=qtype, axis=0, group_size=group)
    if bits in (2, 4):
        t = quantize_weight(w, qtype=qtype, axis=0, scale=scale, shift=shift, group_size=group, optimized=False)
        data, scale, shift = t._data.unpack(), t._scale, t._shift
    else:
        data = torch.ops.quanto.quantize_affine(w, bits=bits, axis=0, group_size=group, scale=scale, shift=shift)
    return data, {"scale": scale, "shift": shift}


for _name, _bits, _group in (("int8-rtn", 8, None), ("int4-rtn", 4, 128), ("int4-rtn-g64", 4, 64),
                             ("int3-rtn", 3, 128), ("int2-rtn", 2, 64)):
    register(RoundToNearest(_name, _bits, _group))
