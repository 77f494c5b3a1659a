"""Exact interval edges on the float32 grid for any elementwise monotone quantizer.

A quantizer that maps each float32 ``x`` to a *level* (a bucket index, a rounded integer) through float
arithmetic is monotone non-decreasing in ``x`` when every step is (multiplying by a positive scale, clamping,
bucketizing, rounding).  The set of ``x`` with the same level as ``w`` is then an interval of float32 values, and
its edges can be found exactly by evaluating the *same* float arithmetic, never by algebra with margins:

1. start from an algebraic guess (``boundary / scale``), usually within an ulp or two of the true edge;
2. correct it by single-ulp steps (``torch.nextafter``), checking the level on both sides of the edge;
3. bisect on the ordered integer keys of float32 the few elements still unresolved (e.g. huge scales where the
   guess is thousands of ulps away), 32 vectorised steps at most.

``level_of(x, idx)`` evaluates the quantizer on the flat tensor ``x``: all elements when ``idx`` is None,
else the elements ``idx`` of the flattened weight (``x`` then has ``idx``'s length).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LevelFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
_ULP_ROUNDS = 2


def float_key(x: torch.Tensor) -> torch.Tensor:
    """Order-preserving int64 key of float32 values (-0.0 -> -1, +0.0 -> 0; adjacent floats differ by 1)."""
    bits = x.float().contiguous().view(torch.int32).long()
    return torch.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def float_from_key(key: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`float_key`."""
    bits = torch.where(key >= 0, key, (-key - 1) - 2**31)
    return bits.to(torch.int32).view(torch.float32)


def lower_edges(target: torch.Tensor, level_of: LevelFn, floor: torch.Tensor, ceil: torch.Tensor,
                guess: torch.Tensor) -> torch.Tensor:
    """Smallest float32 ``x`` in ``[floor, ceil]`` with ``level_of(x) >= target``, elementwise (flat tensors).

    Needs ``level_of(ceil) >= target`` (e.g. ``ceil`` is the block's abs-max); ``guess`` may be anything,
    NaN included.  Elements with no valid answer come back as some value in ``[floor, ceil]``.
    """
    lo = torch.where(torch.isnan(guess), ceil, guess)
    lo = torch.maximum(torch.minimum(lo, ceil), floor)
    down = torch.full_like(lo, float("-inf"))
    up = torch.full_like(lo, float("inf"))
    for _ in range(_ULP_ROUNDS):
        inside = level_of(lo, None) >= target
        below = torch.nextafter(lo, down)
        can_drop = inside & (lo > floor) & (level_of(below, None) >= target)
        step_up = ~inside & (lo < ceil)
        lo = torch.where(step_up, torch.nextafter(lo, up), torch.where(can_drop, below, lo))
    return _bisect_unresolved(lo, target, level_of, floor, ceil)


def upper_edges(target: torch.Tensor, level_of: LevelFn, floor: torch.Tensor, ceil: torch.Tensor,
                guess: torch.Tensor) -> torch.Tensor:
    """Largest float32 ``x`` in ``[floor, ceil]`` with ``level_of(x) <= target``; needs
    ``level_of(floor) <= target`` (mirror image of :func:`lower_edges`)."""

    def mirrored(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return -level_of(-x, idx)

    return -lower_edges(-target, mirrored, -ceil, -floor, -guess)


def _bisect_unresolved(lo: torch.Tensor, target: torch.Tensor, level_of: LevelFn, floor: torch.Tensor,
                       ceil: torch.Tensor) -> torch.Tensor:
    below = torch.nextafter(lo, torch.full_like(lo, float("-inf")))
    exact = (level_of(lo, None) >= target) & ((lo <= floor) | (level_of(below, None) < target))
    idx = torch.nonzero(~exact).flatten()
    if idx.numel() == 0:
        return lo
    sub_target = target.reshape(-1)[idx] if target.dim() else target
    bad = float_key(floor[idx]) - 1          # a key below the floor: never evaluated, always "outside"
    good = float_key(ceil[idx])              # level_of(ceil) >= target: always "inside"
    while bool((active := good - bad > 1).any()):
        mid = torch.where(active, (good + bad) // 2, good)   # settled elements re-test a known-good key
        inside = level_of(float_from_key(mid), idx) >= sub_target
        good = torch.where(inside, mid, good)
        bad = torch.where(inside, bad, mid)
    out = lo.clone()
    out[idx] = float_from_key(good)
    return out
