"""The *candidate* box of a K-quant super-block: every weight's interval under its block's stored scales.

ggml's ``quantize_row_qN_K_ref`` ends every super-block the same way: with the stored fp16 ``d``/``dmin`` and
the integer sub-block scales fixed, each weight's code is re-derived independently,

- Q2_K / Q4_K / Q5_K:  ``q = clamp(nearest_int((x + dmin * m) / (d * sc)), 0, nmax)``;
- Q3_K / Q6_K:         ``q = clamp(nearest_int(x / (d * sc)), -offset, offset - 1) + offset``,

where ``nearest_int(f)`` adds ``12582912.f`` in float32 and reads the mantissa (round half to even), and a
sub-block whose ``d * sc`` is zero keeps the codes of the scale search.  :func:`code_of` reproduces that
float32 arithmetic exactly, so each weight's interval *under fixed scales* is found exactly on the float32 grid
(:func:`compsec.formats.float_grid.furthest_true`), within the sub-block's range.

The scales themselves come from a search over every weight of the super-block (``make_qkx2_quants``,
``make_q3_quants``, ``make_qx_quants``), so this candidate box is *not* a preimage: it is only the starting
point that :mod:`compsec.formats.verify` checks with the real library and shrinks.  Pinned here are the values
that seed that search: each sub-block's minimum and maximum (Q2/4/5_K) or abs-maximum (Q3/Q6_K), and every
weight of a sub-block whose step is zero.
"""

from __future__ import annotations

import torch

from compsec.formats.float_grid import furthest_true, half_gap_below, refine_threshold
from compsec.formats.gguf_k_layout import KLayout, sub_scales

_MAGIC = 12582912.0


def nearest_int(f: torch.Tensor) -> torch.Tensor:
    """ggml's ``nearest_int`` on float32 ``f`` (exact for ``|f| < 2**22``, ggml's own garbage beyond)."""
    bits = (f.float() + _MAGIC).view(torch.int32)
    return (bits & 0x007FFFFF) - 0x00400000


def code_of(x: torch.Tensor, step: torch.Tensor, shift: torch.Tensor, layout: KLayout) -> torch.Tensor:
    """The code ggml's final pass gives ``x`` under sub-block ``step``/``shift`` (float32, broadcastable)."""
    if layout.has_min:
        return nearest_int((x + shift) / step).clamp_(0, layout.nmax)
    return nearest_int(x / step).clamp_(-layout.offset, layout.offset - 1) + layout.offset


def _per_weight(t: torch.Tensor, layout: KLayout) -> torch.Tensor:
    """Per-sub-block ``(n, n_sub)`` values repeated to ``(n, 256)``."""
    return t.repeat_interleave(layout.sub, dim=-1)


def seed_pinned(blocks: torch.Tensor, step: torch.Tensor, layout: KLayout) -> torch.Tensor:
    """The weights that seed the scale search (see the module docs), ``(n, 256)`` bool."""
    sub = blocks.reshape(blocks.shape[0], layout.n_sub, layout.sub)
    if layout.has_min:
        extreme = (sub == sub.amin(-1, keepdim=True)) | (sub == sub.amax(-1, keepdim=True))
    else:
        extreme = sub.abs() == sub.abs().amax(-1, keepdim=True)
    return extreme.reshape(blocks.shape) | _per_weight(step == 0, layout)


def likely_seeds(codes: torch.Tensor, layout: KLayout) -> torch.Tensor:
    """Where :func:`seed_pinned` probably put seeds, from the codes ``(n, 256)`` alone (see ``GgufK``)."""
    sub = codes.long().reshape(codes.shape[0], layout.n_sub, layout.sub)
    if layout.has_min:
        likely = (sub == sub.amin(-1, keepdim=True)) | (sub == sub.amax(-1, keepdim=True))
    else:
        distance = (sub - layout.offset).abs()
        likely = distance >= distance.amax(-1, keepdim=True) - 1
    return likely.reshape(codes.shape)


def sub_range(blocks: torch.Tensor, layout: KLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-weight limits ``(lo, hi)``: the sub-block's ``(min(min, 0), max)``, or ``(-amax, amax)``."""
    sub = blocks.reshape(blocks.shape[0], layout.n_sub, layout.sub)
    if layout.has_min:     # the search clamps a positive minimum to 0: below it down to 0 is the same search
        lo, hi = torch.clamp(sub.amin(-1), max=0.0), sub.amax(-1)
    else:
        hi = sub.abs().amax(-1)
        lo = -hi
    return _per_weight(lo, layout), _per_weight(hi, layout)


def _start_of_code(t: torch.Tensor, step: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Estimate of the smallest float32 ``x`` with ``nearest_int(fl(fl(x + shift) / step)) >= t`` (``step > 0``):
    the threshold on the sum ``fl(x + shift)`` is placed exactly first, then the addition is undone."""
    z = ((t.double() - 0.5) * step.double()).float()
    z = refine_threshold(lambda v: nearest_int(v / step) >= t, z)
    return (z.double() - shift.double() - half_gap_below(z)).float()


def edge_guesses(codes: torch.Tensor, step: torch.Tensor, shift: torch.Tensor, layout: KLayout,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimates of both edges of each code's interval (order unknown: a Q3_K/Q6_K step may be negative);
    ``±inf`` on the open side of a clamped end code."""
    if layout.has_min:
        edge_a, edge_b = _start_of_code(codes.float(), step, shift), _start_of_code(codes.float() + 1, step, shift)
    else:
        base = codes.double() - layout.offset
        edge_a, edge_b = ((base - 0.5) * step.double()).float(), ((base + 0.5) * step.double()).float()
    outward = torch.copysign(torch.full_like(step, float("inf")), step)
    edge_a = torch.where(codes == 0, -outward, edge_a)
    return edge_a, torch.where(codes == layout.nmax, outward, edge_b)


def seed_limits(anchors: torch.Tensor, seeds: torch.Tensor, layout: KLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sub_range` computed from the seeds' values alone (``anchors`` at ``seeds``; the rest ignored)."""
    shape = (anchors.shape[0], layout.n_sub, layout.sub)
    sub, mask = anchors.reshape(shape), seeds.reshape(shape)
    if layout.has_min:
        lo = torch.clamp(torch.where(mask, sub, torch.inf).amin(-1), max=0.0)
        hi = torch.where(mask, sub, -torch.inf).amax(-1)
    else:
        hi = torch.where(mask, sub.abs(), 0.0).amax(-1)
        lo = -hi
    return _per_weight(lo, layout), _per_weight(hi, layout)


def start_points(codes: torch.Tensor, step: torch.Tensor, shift: torch.Tensor, lo_lim: torch.Tensor,
                 hi_lim: torch.Tensor, layout: KLayout) -> torch.Tensor:
    """A point of each code's interval found without the weights: the dequantized value clamped into the
    sub-block's range (per-weight ``step``/``shift``; holds the code wherever :func:`seeds` left it unpinned)."""
    x = step * (codes.float() - layout.offset) - shift
    return torch.minimum(torch.maximum(x, lo_lim), hi_lim)


def seeds(blocks: torch.Tensor, codes: torch.Tensor, scales: dict[str, torch.Tensor], layout: KLayout,
          ) -> torch.Tensor:
    """The candidate's pinned weights ``(n, 256)``: :func:`seed_pinned`, plus the (rare) weights whose
    :func:`start_points` does not hold their code.  Raises ValueError when a code does not follow from its weight
    under the stored scales (wrong tensor)."""
    step, shift = (_per_weight(t, layout) for t in sub_scales(scales, layout))
    pinned = seed_pinned(blocks, step.reshape(-1, layout.n_sub, layout.sub)[..., 0], layout)
    codes = codes.long()
    safe_step = torch.where(pinned, torch.ones_like(step), step)
    if not bool((code_of(blocks, safe_step, shift, layout) == codes)[~pinned].all()):
        raise ValueError("the K-quant codes do not follow from these weights; pass the tensor that was quantized")
    start = start_points(codes, step, shift, *seed_limits(blocks, pinned, layout), layout)
    return pinned | (code_of(start, safe_step, shift, layout) != codes)


def bounds(codes: torch.Tensor, scales: dict[str, torch.Tensor], seeds_: torch.Tensor, anchors: torch.Tensor,
           layout: KLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate ``(lo, hi)`` float32 ``(n, 256)`` from codes, scales and the seeds' values (``anchors``)."""
    step, shift = (_per_weight(t, layout) for t in sub_scales(scales, layout))
    codes = codes.long()
    safe_step = torch.where(seeds_, torch.ones_like(step), step)
    lo_lim, hi_lim = seed_limits(anchors, seeds_, layout)
    flat_step, flat_shift, flat_codes = safe_step.reshape(-1), shift.reshape(-1), codes.reshape(-1)
    flat_pinned = seeds_.reshape(-1)

    def keeps(x: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:     # pinned: settled, any answer
        if sel is None:
            return (code_of(x, flat_step, flat_shift, layout) == flat_codes) | flat_pinned
        return (code_of(x, flat_step[sel], flat_shift[sel], layout) == flat_codes[sel]) | flat_pinned[sel]

    edge_a, edge_b = edge_guesses(codes, safe_step, shift, layout)
    guess_lo, guess_hi = torch.minimum(edge_a, edge_b), torch.maximum(edge_a, edge_b)
    start = torch.where(seeds_, anchors, start_points(codes, step, shift, lo_lim, hi_lim, layout)).reshape(-1)
    lo = furthest_true(keeps, start, torch.where(seeds_, anchors, lo_lim).reshape(-1), guess_lo.reshape(-1))
    hi = furthest_true(keeps, start, torch.where(seeds_, anchors, hi_lim).reshape(-1), guess_hi.reshape(-1))
    lo, hi = lo.view(anchors.shape), hi.view(anchors.shape)
    return torch.where(seeds_, anchors, lo), torch.where(seeds_, anchors, hi)


def candidate_box(blocks: torch.Tensor, codes: torch.Tensor, scales: dict[str, torch.Tensor], layout: KLayout,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(lo, hi, pinned)`` float32 ``(n, 256)`` for float32 ``blocks`` quantized to ``codes``/``scales``.

    Raises ValueError when a code does not follow from its weight under the stored scales (wrong tensor)."""
    pinned = seeds(blocks, codes, scales, layout)
    lo, hi = bounds(codes, scales, pinned, blocks, layout)
    return lo, hi, pinned
