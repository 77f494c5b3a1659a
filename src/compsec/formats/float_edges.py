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
    """
    lo = torch.where(torch.isnan(guess), ceil, guess)
    lo = torch.maximum(torch.minimum(lo, ceil), floor)
    down = torch.full_like(lo, float("-inf"))
    for step in range(_ULP_ROUNDS + 1):
        below = torch.nextafter(lo, down)
        inside = at_least(lo, None)
        below_inside = at_least(below, None) & (lo > floor)
        exact = inside & ~below_inside
        if bool(exact.all()):
            return lo
        if step == _ULP_ROUNDS:
            return _bisect(lo, ~exact, at_least, floor, ceil)
        step_up = ~inside & (lo < ceil)
        lo = torch.where(step_up, torch.nextafter(lo, -down), torch.where(below_inside, below, lo))
    return lo


def upper_edges(at_most: Predicate, floor: torch.Tensor, ceil: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
    """Largest float32 ``x`` in ``[floor, ceil]`` with ``at_most(x)`` (true then false, true at ``floor``):
    the mirror image of :func:`lower_edges`."""

    def mirrored(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return at_most(-x, idx)

    return -lower_edges(mirrored, -ceil, -floor, -guess)


def _bisect(lo: torch.Tensor, unresolved: torch.Tensor, at_least: Predicate, floor: torch.Tensor,
            ceil: torch.Tensor) -> torch.Tensor:
    idx = torch.nonzero(unresolved.reshape(-1)).flatten()
    bad = float_key(floor[idx]) - 1          # a key below the floor: never evaluated, always "outside"
    good = float_key(ceil[idx])              # at_least(ceil) holds: always "inside"
    while bool((active := good - bad > 1).any()):
        mid = torch.where(active, (good + bad) // 2, good)   # settled elements re-test a known-good key
        inside = at_least(float_from_key(mid), idx)
        good = torch.where(inside, mid, good)
        bad = torch.where(inside, bad, mid)
    out = lo.clone()
    out[idx] = float_from_key(good)
    return out
