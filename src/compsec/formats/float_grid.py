"""Exact interval edges on the float32 grid: an algebraic guess checked with the real arithmetic.

Box edges must come from the real float arithmetic of a quantizer, not from margins.  A quantizer's code is a
monotone function of each weight, so the set of float32 values keeping a code is an interval.  Its edge is taken
from a closed-form guess (the threshold with each rounding step undone, usually exact or one ulp off) and
*verified*: the guess must keep the code and its outer neighbour must not.  The few elements where that fails
gallop outward and are bisected over the *ordered integer keys* of float32 values (consecutive floats have
consecutive keys), so the result is exact by construction whatever the guess; a bad guess only costs time.

>>> import torch
>>> x = torch.tensor([1.0])
>>> hi = furthest_true(lambda v, sel: v * 3 < 4, x, torch.tensor([10.0]))   # largest v >= 1 with 3v < 4
>>> bool(hi * 3 < 4) and not bool(torch.nextafter(hi, torch.tensor(11.0)) * 3 < 4)
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch

_MAG = 0x7FFFFFFF
_GALLOP = 5          # galloping steps of 2, 4, ..., 32 ulps before plain bisection


def float_key(x: torch.Tensor) -> torch.Tensor:
    """Ordered int64 key of float32 ``x``: ``a < b`` iff ``key(a) < key(b)`` (-0.0 sits just below +0.0)."""
    bits = x.float().contiguous().view(torch.int32)
    return (bits ^ ((bits >> 31) & _MAG)).long()


def key_float(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`float_key` (the map is its own inverse on the int32 bits)."""
    bits = k.int()
    return (bits ^ ((bits >> 31) & _MAG)).view(torch.float32)


def furthest_true(pred: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], start: torch.Tensor,
                  stop: torch.Tensor, guess: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise, the float32 furthest from ``start`` towards ``stop`` such that ``pred`` holds on all of
    ``[start, x]``.

    ``pred(x, sel)`` gets float32 values ``x`` for the flat element indices ``sel`` (1-D), or for every element
    when ``sel`` is None, and returns a bool tensor; it must hold at ``start`` and be monotone along the segment
    (true, then false).  ``stop`` (broadcastable to ``start``) may lie on either side of ``start``; the result
    never passes it.  ``guess`` (an estimate of the edge, e.g. the algebraic threshold) changes the cost, never
    the result: the guess and its neighbour are checked over the whole tensor, elements off by more than one
    ulp gallop outward from it (1, 2, 4, ... ulps) and the bracket found is bisected, on those elements only.
    """
    shape = start.shape
    start = start.reshape(-1).float()
    stop = torch.broadcast_to(stop.float(), shape).reshape(-1)
    g = start if guess is None else torch.broadcast_to(guess.float(), shape).reshape(-1)
    g = torch.where(torch.isnan(g), start, torch.clamp(g, torch.minimum(start, stop), torch.maximum(start, stop)))
    ok = pred(g, None)
    probe = torch.where(ok, torch.nextafter(g, stop), torch.nextafter(g, start))
    probe_ok = pred(probe, None)
    # resolved: the guess holds and its outer neighbour fails (or is the guess: at ``stop``), or the mirror
    edge = torch.where(ok, g, probe)
    open_ = torch.where(ok, probe_ok & (probe != g), ~probe_ok)
    if not bool(open_.any()):
        return edge.reshape(shape)
    sel = open_.nonzero().squeeze(1)
    edge[sel] = _search(pred, sel, start[sel], stop[sel], probe[sel], probe_ok[sel])
    return edge.reshape(shape)


def _search(pred, sel: torch.Tensor, start: torch.Tensor, stop: torch.Tensor, probe: torch.Tensor,
            probe_ok: torch.Tensor) -> torch.Tensor:
    """The edge for the elements ``sel`` whose guess was off by more than one ulp: gallop from ``probe`` (which
    holds where ``probe_ok``, else fails) away from it, then bisect the bracket, on ordered float keys."""
    k0 = float_key(start)
    step = torch.where(float_key(stop) >= k0, 1, -1)
    span = (float_key(stop) - k0) * step
    at_probe = (float_key(probe) - k0) * step
    good = torch.where(probe_ok, at_probe, 0)             # offset known to hold
    bad = torch.where(probe_ok, span + 1, at_probe)       # offset known (or assumed, past stop) to fail
    at = lambda off, i: key_float(k0[i] + step[i] * off)
    delta = 2
    while True:
        active = (bad - good > 1).nonzero().squeeze(1)
        if active.numel() == 0:
            return key_float(k0 + step * good)
        g, b, up = good[active], bad[active], probe_ok[active]
        if delta <= 2**_GALLOP:
            mid = torch.where(up, torch.minimum(g + delta, b - 1), torch.maximum(b - delta, g + 1))
            delta *= 2
        else:
            mid = (g + b) // 2
        ok = pred(at(mid, active), sel[active])
        good[active] = torch.where(ok, mid, g)
        bad[active] = torch.where(ok, b, mid)


def next_float(x: torch.Tensor, up: bool) -> torch.Tensor:
    """The adjacent float32 above (``up``) or below ``x``."""
    x = x.float()
    return torch.nextafter(x, torch.full_like(x, float("inf") if up else float("-inf")))


def half_gap_below(t: torch.Tensor) -> torch.Tensor:
    """Half the distance (float64) from float32 ``t`` down to the next float32: ``fl32(v) >= t`` for real
    ``v >= t - half_gap_below(t)`` (up to the tie), which turns a threshold on a rounded sum into one on its
    operand."""
    t = t.float()
    return (t.double() - next_float(t, up=False).double()) / 2


def refine_threshold(holds: Callable[[torch.Tensor], torch.Tensor], guess: torch.Tensor,
                     rounds: int = 2) -> torch.Tensor:
    """Move a float32 ``guess`` of the smallest ``v`` with ``holds(v)`` (monotone: false, then true) by up to
    ``rounds`` ulps towards it, checking ``v`` and its predecessor with the real arithmetic each round.  Used to
    place an *intermediate* threshold exactly before undoing the next rounding step; the result is still an
    estimate (far-off guesses stay off), to be settled by :func:`furthest_true`."""
    v = guess.float()
    for _ in range(rounds):
        below = next_float(v, up=False)
        v = torch.where(~holds(v), next_float(v, up=True), torch.where(holds(below), below, v))
    return v


def same_bits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise bit equality of two float32 tensors (so -0.0 differs from +0.0)."""
    return a.float().contiguous().view(torch.int32) == b.float().contiguous().view(torch.int32)
