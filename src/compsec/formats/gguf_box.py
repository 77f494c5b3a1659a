"""Exact preimage boxes of ggml's legacy block quantizers (see :mod:`compsec.formats.gguf_math`).

A box keeps every block's float32 parameters (``d``, ``1/d`` and, for the ``_1`` types, ``min``) and every code.

*Pinned* (``lo == hi``) are the elements whose code interval reaches a scale-defining value, read off the codes:
``|q| == 127`` in Q8_0 (the abs-max side), ``q == 0`` in Q4_0/Q5_0 (the side of the signed abs-max ``M``), and
``q == 0`` or ``q == top`` in Q4_1/Q5_1 (the min and max sides); every element of a block lacking those codes
(all-zero blocks, ``1/d`` overflowing) is pinned.  Moving such an element past the block extreme changes the
float32 ``d`` or ``min`` but often not their float16 rounding nor any code, so the preimage is not a box there:
pinning keeps the box sound, and every unpinned edge tight.

Every other element gets the float interval keeping its code under the unchanged parameters, found exactly by
its closed-form threshold checked with the real float32 arithmetic (:func:`compsec.formats.float_grid.furthest_true`,
searching the float grid only where the guess is off).  It lies strictly inside the
block's range, except on the side opposite ``M`` in Q4_0/Q5_0 where it is cut at ``-M`` (or just inside ``-M``
before ``M``'s position: numpy's argmax keeps the *first* maximum, and a tie there would flip the sign of ``d``).

The parameters come from the pinned elements only, so ``w`` matters only through its pinned values.  Known gap:
a Box cannot tell -0.0 from +0.0, and the sign of a zero scale-defining element reaches the stored ``d``/``m``
(all-zero blocks; Q4_1/Q5_1 blocks whose minimum is a zero: which signed zero numpy's ``min`` returns from a mix
of -0.0 and +0.0 depends on its SIMD reduction order, so ``quantize`` may differ from gguf in the sign bit of
``m`` there, never in a dequantized value).
"""

from __future__ import annotations

import torch

from compsec.formats import gguf_math as gm
from compsec.formats.float_grid import furthest_true, half_gap_below, refine_threshold


def pinned_mask(codes: torch.Tensor, scheme: str, level: int) -> torch.Tensor:
    """Elements whose interval reaches a block extreme (``codes``: float ``(n, 32)``); see the module docs."""
    if scheme == "sym":
        extreme = codes.abs() == 127
        present = extreme.any(-1, keepdim=True)
    elif scheme == "signed_max":
        extreme = codes == 0
        present = extreme.any(-1, keepdim=True)
    else:
        extreme = (codes == 0) | (codes == level)
        present = (codes == 0).any(-1, keepdim=True) & (codes == level).any(-1, keepdim=True)
    return extreme | ~present


def params_from_pinned(blocks: torch.Tensor, pinned: torch.Tensor, scheme: str, level: int) -> dict:
    """Block parameters computed from the pinned elements alone (the others replaced by a neutral value)."""
    if scheme == "min_max":
        neutral = torch.where(pinned, blocks, torch.full_like(blocks, float("inf"))).amin(-1, keepdim=True)
        return gm.min_max_params(torch.where(pinned, blocks, neutral), level)
    neutral = torch.where(pinned, blocks, torch.zeros_like(blocks))
    return gm.sym_params(neutral) if scheme == "sym" else gm.signed_max_params(neutral, level)


def search_limits(blocks: torch.Tensor, p: dict, scheme: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo_lim, hi_lim)`` bounding each unpinned element: the block range, cut as the module docs say."""
    if scheme == "sym":
        return (-p["amax"]).expand_as(blocks), p["amax"].expand_as(blocks)
    if scheme == "min_max":
        return p["min"].expand_as(blocks), p["max"].expand_as(blocks)
    m = p["max"]
    negative = torch.signbit(m)
    before = torch.arange(blocks.shape[-1], device=blocks.device) < p["idx"]
    opposite = (-m).expand_as(blocks)
    opposite = torch.where(before, torch.nextafter(opposite, torch.zeros_like(opposite)), opposite)
    same = m.expand_as(blocks)
    return torch.where(negative, same, opposite), torch.where(negative, opposite, same)


def code_centres(codes: torch.Tensor, p: dict, scheme: str, level: int) -> torch.Tensor:
    """A value inside each code's interval (its dequantized value)."""
    if scheme == "sym":
        return codes * p["d"]
    if scheme == "signed_max":
        return (codes - level) * p["d"]
    return p["min"] + codes * p["d"]


def code_threshold(t: torch.Tensor, p: dict, scheme: str, level: int) -> torch.Tensor:
    """Algebraic estimate (float32, within an ulp or so) of the weight where the code reaches ``t`` (Q4/Q5).

    The rounding steps are undone one by one in float64: the code test on ``s = fl(y + c)`` becomes
    ``y >= t - c - half_gap_below(t)``, ``y = fl(x * inv)`` gives ``x = y / inv`` and, for Q4_1/Q5_1,
    ``fl(x - min) >= z`` gives ``x = z + min - half_gap_below(z)``.  ``furthest_true`` corrects the rest."""
    inv = p["inv"].double()
    offset = level + 0.5 if scheme == "signed_max" else 0.5
    z = ((t.double() - offset - half_gap_below(t)) / inv).float()
    if scheme == "signed_max":     # the top code is clipped: it reaches the block's far side, -M
        return torch.where(t >= 2 * level, -p["max"], z)
    half = torch.tensor(offset, dtype=torch.float32)
    z = refine_threshold(lambda v: v * p["inv"] + half >= t, z)      # the float32 z = x - min where code t starts
    return (z.double() + p["min"].double() - half_gap_below(z)).float()


def edge_guesses(codes: torch.Tensor, p: dict, scheme: str, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimates of both edges of each code's interval (order unknown: ``d`` may be negative)."""
    if scheme == "sym":     # rounding half away from zero: code c holds y = x * inv within c -+ 0.5
        inv = p["inv"].double()
        return ((codes - 0.5) / inv).float(), ((codes + 0.5) / inv).float()
    return code_threshold(codes, p, scheme, level), code_threshold(codes + 1, p, scheme, level)


def block_box(blocks: torch.Tensor, codes: torch.Tensor, scheme: str, level: int, code_of):
    """``(lo, hi)`` for float32 ``blocks`` ``(n, 32)`` quantized to ``codes``.

    ``code_of(x, p, cast=True)`` gives the codes of ``x`` under block parameters ``p`` (broadcastable; it reads
    only ``p["inv"]`` and ``p["min"]``; ``cast=False`` may skip the cast of inf/NaN).  Raises ValueError when the codes do not fit the pinned weights.
    """
    codes = codes.float()
    pinned = pinned_mask(codes, scheme, level)
    p = params_from_pinned(blocks, pinned, scheme, level)
    lo_lim, hi_lim = search_limits(blocks, p, scheme)
    start = torch.where(pinned, blocks, code_centres(codes, p, scheme, level))
    if not bool((code_of(start, p) == codes).all()) or not bool(((start >= lo_lim) & (start <= hi_lim)).all()):
        raise ValueError("the quantized codes do not come from these weights; pass the tensor that was quantized")
    flat = {k: v.expand(blocks.shape).reshape(-1) for k, v in p.items() if k in ("inv", "min")}
    flat_codes = codes.reshape(-1)

    def keeps(x: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:     # pinned elements: any answer
        if sel is None:
            return code_of(x.view(blocks.shape), p, cast=False).reshape(-1) == flat_codes
        return code_of(x, {k: v[sel] for k, v in flat.items()}, cast=False) == flat_codes[sel]

    e1, e2 = edge_guesses(codes, p, scheme, level)
    lo = furthest_true(keeps, start, torch.where(pinned, start, lo_lim), torch.minimum(e1, e2))
    hi = furthest_true(keeps, start, torch.where(pinned, start, hi_lim), torch.maximum(e1, e2))
    return torch.where(pinned, blocks, lo), torch.where(pinned, blocks, hi)
