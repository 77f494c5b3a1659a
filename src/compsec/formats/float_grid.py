"""Exact interval edges on the float32 grid, found by vectorised bisection.

Box edges must come from the real float arithmetic of a quantizer, not from margins.  A quantizer's code is a
monotone function of each weight, so the set of float32 values keeping a code is an interval; its edges are found
here by bisecting over the *ordered integer keys* of float32 values (consecutive floats have consecutive keys),
which takes at most 32 steps per edge and is exact by construction.

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


def float_key(x: torch.Tensor) -> torch.Tensor:
    """Ordered int64 key of float32 ``x``: ``a < b`` iff ``key(a) < key(b)`` (-0.0 sits just below +0.0)."""
    bits = x.float().contiguous().view(torch.int32)
    return (bits ^ ((bits >> 31) & _MAG)).long()


def key_float(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`float_key` (the map is its own inverse on the int32 bits)."""
    bits = k.int()
    return (bits ^ ((bits >> 31) & _MAG)).view(torch.float32)


def furthest_true(pred: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], start: torch.Tensor,
                  stop: torch.Tensor, guess: torch.Tensor | None = None,
                  slack: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise, the float32 furthest from ``start`` towards ``stop`` such that ``pred`` holds on all of
    ``[start, x]``.

    ``pred(x, sel)`` gets float32 values ``x`` for the flat element indices ``sel`` (both 1-D) and returns a bool
    tensor; it must hold at ``start`` and be monotone along the segment (true, then false).  ``stop``
    (broadcastable to ``start``) may lie on either side of ``start``; the result never passes it.  An optional
    ``guess`` of the edge with value-space ``slack`` narrows the search where ``pred`` confirms that the window
    holds the edge (it changes the cost, never the result).  At most 32 halvings, each over unresolved elements.
    """
    shape = start.shape
    k0 = float_key(start.reshape(-1))
    k1 = float_key(torch.broadcast_to(stop.float(), shape).reshape(-1))
    step = torch.where(k1 >= k0, 1, -1)
    good = torch.zeros_like(k0)              # offset known to satisfy pred
    bad = (k1 - k0).abs() + 1                # offset known (or assumed, past stop) to fail pred
    every = torch.arange(k0.numel(), device=k0.device)
    at = lambda off, sel: key_float(k0[sel] + step[sel] * off)
    if guess is not None:
        window = [torch.broadcast_to(v.float(), shape).reshape(-1) for v in (guess - slack, guess + slack)]
        good, bad = _narrow(pred, at, every, k0, step, good, bad, window)
    while True:
        sel = (bad - good > 1).nonzero().squeeze(1)
        if sel.numel() == 0:
            return key_float(k0 + step * good).reshape(shape)
        g, b = good[sel], bad[sel]
        mid = (g + b) // 2
        ok = pred(at(mid, sel), sel)
        good[sel] = torch.where(ok, mid, g)
        bad[sel] = torch.where(ok, b, mid)


def _narrow(pred, at, every, k0, step, good, bad, window):
    """Shrink ``[good, bad)`` to the guessed window (or to ``stop``) wherever ``pred`` confirms the edge is there."""
    ends = [(float_key(v) - k0) * step for v in window]
    near = torch.minimum(*ends).clamp(min=good, max=bad - 1)
    far = (torch.maximum(*ends) + 1).clamp(min=near + 1, max=bad)
    near_ok = pred(at(near, every), every)
    far_fails = (far == bad) | ~pred(at(far.clamp(max=bad - 1), every), every)
    use = near_ok & far_fails
    whole = pred(at(bad - 1, every), every)      # the edge is ``stop`` itself (e.g. a clipped code)
    good = torch.where(whole, bad - 1, torch.where(use, near, good))
    return good, torch.where(use & ~whole, far, bad)


def next_float(x: torch.Tensor, up: bool) -> torch.Tensor:
    """The adjacent float32 above (``up``) or below ``x``."""
    x = x.float()
    return torch.nextafter(x, torch.full_like(x, float("inf") if up else float("-inf")))


def same_bits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise bit equality of two float32 tensors (so -0.0 differs from +0.0)."""
    return a.float().contiguous().view(torch.int32) == b.float().contiguous().view(torch.int32)
