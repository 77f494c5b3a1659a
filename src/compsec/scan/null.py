"""Null models: what a benign (untampered) weight tensor looks like, given the storage dtype's grid.

Storage grid.  A bf16/fp16 weight can only take the representable values of its dtype.  Inside a narrow
quantization interval ``[lo, hi]`` there may be only a handful of them, so "within 1 % of an edge" can mean
"equal to ``lo``" with probability ``1/k`` for ``k`` grid points: that is granularity, not tampering.  We model a
benign weight as a draw from a density that is smooth on the scale of one interval, then rounded to the nearest
representable value: each grid value ``v`` receives the probability mass of its rounding *cell*
``[(prev(v)+v)/2, (v+next(v))/2]``.  The mass of all grid values from ``u`` to ``v`` (inclusive) is therefore
``cell_mass(u, v) = (v + next(v))/2 - (prev(u) + u)/2`` — exact, closed form, vectorised (float64 arithmetic).

Tails.  One-sided normal and binomial tails come from :mod:`scipy.special` (``ndtr``, ``bdtrc``: the functions
behind ``scipy.stats.norm.sf`` and ``binom.sf``, without the seconds-long import of :mod:`scipy.stats`).
"""

from __future__ import annotations

import math

import torch

MIN_VARIANCE = 25.0  # below this the normal approximation is poor; the tensor is reported as untestable
_UP, _DOWN = float("inf"), float("-inf")


def grid_floor(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Largest value representable in ``dtype`` that is ``<= x`` (``x`` float64), returned in ``dtype``."""
    y = x.to(dtype)
    too_big = y.double() > x
    return torch.where(too_big, torch.nextafter(y, torch.full_like(y, _DOWN)), y)


def grid_ceil(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Smallest value representable in ``dtype`` that is ``>= x`` (``x`` float64), returned in ``dtype``."""
    y = x.to(dtype)
    too_small = y.double() < x
    return torch.where(too_small, torch.nextafter(y, torch.full_like(y, _UP)), y)


def _next(v: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(v, torch.full_like(v, _UP)).double()


def _prev(v: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(v, torch.full_like(v, _DOWN)).double()


def upper_cell_edge(v: torch.Tensor) -> torch.Tensor:
    """Float64 upper boundary of the rounding cell of grid value ``v`` (``v`` in its storage dtype)."""
    return (v.double() + _next(v)) / 2


def lower_cell_edge(v: torch.Tensor) -> torch.Tensor:
    """Float64 lower boundary of the rounding cell of grid value ``v`` (``v`` in its storage dtype)."""
    return (_prev(v) + v.double()) / 2


def normal_tail(z: float) -> float:
    """One-sided p-value ``P(Z >= z)`` for a standard normal ``Z`` (exact in the far tail, no underflow to 0
    before ~1e-300)."""
    from scipy.special import ndtr

    return float(ndtr(-z))


def poisson_binomial_test(count: int, expected: float, variance: float) -> tuple[float, float]:
    """Z-score and one-sided p-value of ``count`` successes against a sum of independent Bernoullis with the
    given mean and variance (normal approximation with continuity correction; valid for ``variance >= ~10``)."""
    if variance <= 0:
        return 0.0, 1.0
    z = (count - 0.5 - expected) / math.sqrt(variance)
    return z, normal_tail(z)


def binomial_tail(count: int, trials: int, prob: float) -> float:
    """``P(K >= count)`` for ``K ~ Binomial(trials, prob)`` (exact, scipy)."""
    from scipy.special import bdtrc

    if count <= 0:
        return 1.0
    if count > trials:
        return 0.0
    return float(bdtrc(count - 1, trials, min(max(prob, 0.0), 1.0)))


def band_masses(lo: torch.Tensor, hi: torch.Tensor, eps: float) -> dict[str, torch.Tensor]:
    """Grid values bounding the bands of each interval and the bands' cell masses (float64).

    ``lo``/``hi``: interval edges in the storage dtype (any shape).  Returns the thresholds ``a`` (last edge-band
    value above ``lo``), ``b`` (first edge-band value below ``hi``), ``c``/``d`` (the adjacent bands' outer
    values) and the masses ``edge``, ``adjacent``, ``interval``.
    """
    dtype = lo.dtype
    lo64, hi64 = lo.double(), hi.double()
    width = hi64 - lo64
    a, c = grid_floor(lo64 + eps * width, dtype), grid_floor(lo64 + 3 * eps * width, dtype)
    b, d = grid_ceil(hi64 - eps * width, dtype), grid_ceil(hi64 - 3 * eps * width, dtype)
    lo_cell, hi_cell = lower_cell_edge(lo), upper_cell_edge(hi)
    edge = (upper_cell_edge(a) - lo_cell) + (hi_cell - lower_cell_edge(b))
    adjacent = (upper_cell_edge(c) - upper_cell_edge(a)) + (lower_cell_edge(b) - lower_cell_edge(d))
    return {"a": a, "b": b, "c": c, "d": d, "edge": edge, "adjacent": adjacent, "interval": hi_cell - lo_cell}
