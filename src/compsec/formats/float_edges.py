"""Exact interval edges on the float32 grid for any elementwise monotone quantizer.

A quantizer that maps each float32 ``x`` to a code through float arithmetic is monotone in ``x`` when every step
is (multiplying by a positive scale, clamping, bucketizing, rounding).  "``x`` keeps its code" is then the
conjunction of two monotone predicates, ``at_least(x)`` (false below the lower edge, true from it) and
``at_most(x)`` (true up to the upper edge), and each edge can be found exactly by evaluating the *same* float
arithmetic, never by algebra with margins:

1. start from an algebraic guess (``boundary / scale``), usually within an ulp or two of the true edge;
2. check both sides of it and correct it by single-ulp steps (``torch.nextafter``);
3. bisect on the ordered integer keys of float32 the few elements still unresolved (e.g. huge scales where the
   guess is thousands of ulps away), 32 vectorised steps at most.

A predicate ``pred(x, idx)`` evaluates flat ``x``: every element when ``idx`` is None, else ``x`` holds the
candidates for the flat positions ``idx`` only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Predicate = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
_ULP_ROUNDS = 2


def float_key(x: torch.Tensor) -> torch.Tensor:
    """Order-preserving int64 key of float32 values (-0.0 -> -1, +0.0 -> 0; adjacent floats differ by 1)."""
    bits = x.float().contiguous().view(torch.int32).long()
    return torch.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def float_from_key(key: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`float_key`."""
    bits = torch.where(key >= 0, key, (-key - 1) - 2**31)
    return bits.to(torch.int32).view(torch.float32)


def lower_edges(at_least: Predicate, floor: torch.Tensor, ceil: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
    """Smallest float32 ``x`` in ``[floor, ceil]`` with ``at_least(x)``, elementwise (flat tensors).

    ``at_least`` must be monotone (false then true) and true at ``ceil``; ``guess`` may be anything, NaN
    included.  Elements where ``at_least(ceil)`` is false come back as some value in ``[floor, ceil]``.
    Cost: two predicate evaluations over the whole tensor, then work on the unresolved elements only.
    """
    lo = torch.where(torch.isnan(guess), ceil, guess)
    lo = torch.maximum(torch.minimum(lo, ceil), floor)
    exact, step_up, step_down = _classify(at_least, lo, floor, None)
    if bool(exact.all()):
        return lo
    idx = torch.nonzero(~exact).flatten()
    sub, sub_floor, sub_ceil = lo[idx], floor[idx], ceil[idx]
    step_up, step_down = step_up[idx] & (sub < sub_ceil), step_down[idx]
    for _ in range(_ULP_ROUNDS):
        sub = torch.where(step_up, _next(sub, up=True), torch.where(step_down, _next(sub, up=False), sub))
        exact, step_up, step_down = _classify(at_least, sub, sub_floor, idx)
        step_up &= sub < sub_ceil
        if bool(exact.all()):
            break
    if not bool(exact.all()):
        left = ~exact
        sub[left] = _bisect(at_least, sub_floor[left], sub_ceil[left], idx[left])
    lo[idx] = sub
    return lo


def _next(x: torch.Tensor, up: bool) -> torch.Tensor:
    return torch.nextafter(x, torch.full_like(x, float("inf") if up else float("-inf")))


def _classify(at_least: Predicate, lo: torch.Tensor, floor: torch.Tensor, idx: torch.Tensor | None):
    """(exact, must step up, may step down): ``lo`` is the edge when it is inside and its predecessor is not."""
    inside = at_least(lo, idx)
    below_inside = at_least(_next(lo, up=False), idx) & (lo > floor)
    return inside & ~below_inside, ~inside, below_inside


def upper_edges(at_most: Predicate, floor: torch.Tensor, ceil: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
    """Largest float32 ``x`` in ``[floor, ceil]`` with ``at_most(x)`` (true then false, true at ``floor``):
    the mirror image of :func:`lower_edges`."""

    def mirrored(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return at_most(-x, idx)

    return -lower_edges(mirrored, -ceil, -floor, -guess)


def _bisect(at_least: Predicate, floor: torch.Tensor, ceil: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Smallest ``x`` in ``[floor, ceil]`` with ``at_least(x)`` for the flat positions ``idx``, by bisection
    on float keys (at most ~32 steps)."""
    bad = float_key(floor) - 1               # a key below the floor: never evaluated, always "outside"
    good = float_key(ceil)                   # at_least(ceil) holds: always "inside"
    while bool((active := good - bad > 1).any()):
        mid = torch.where(active, (good + bad) // 2, good)   # settled elements re-test a known-good key
        inside = at_least(float_from_key(mid), idx)
        good = torch.where(inside, mid, good)
        bad = torch.where(inside, bad, mid)
    return float_from_key(good)
