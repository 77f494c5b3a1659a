"""Shrunk boxes as *cells* of the candidate box: a function of the candidate, one level per group and one
cell number per weight, so that a verified box can be stored compactly and rebuilt bit for bit.

At level ``k`` the candidate interval ``[lo, hi]`` of a weight is cut into ``2**k`` equal cells (float64 edges
``e(j) = min(lo + (hi - lo) * j * 2**-k, hi)``, with ``e(0) = lo`` and ``e(2**k) = hi``, so the edges never
decrease); the weight's box is the cell ``j`` holding it (the largest ``j`` with ``e(j) <= w``), rounded inward
to the storage dtype.  Its width is ``2**-k`` of the candidate's (less after rounding), and ``w`` is always
inside: ``e(j) <= w <= e(j + 1)`` and ``w`` is representable, so rounding inward cannot pass it.

>>> import torch
>>> lo, hi, w = torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.tensor([[0.3]])
>>> j = cell_index(w, lo, hi, torch.tensor([[2]]))
>>> int(j), [float(t) for t in cell_box(lo, hi, torch.tensor([[2]]), j, torch.float32)]
(1, [0.25, 0.5])
"""

from __future__ import annotations

import torch

from compsec.formats.float_grid import float_key, key_float

_HALF_MAG = 0x7FFF


def storage_key(x: torch.Tensor, storage: torch.dtype) -> torch.Tensor:
    """Ordered int64 key of ``x`` in ``storage`` (consecutive values of the dtype have consecutive keys)."""
    if storage == torch.float32:
        return float_key(x)
    bits = x.to(storage).contiguous().view(torch.int16).int()
    return (bits ^ ((bits >> 15) & _HALF_MAG)).long()


def key_value(key: torch.Tensor, storage: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`storage_key`: the ``storage`` value with that key."""
    if storage == torch.float32:
        return key_float(key)
    bits = key.int()
    return (bits ^ ((bits >> 15) & _HALF_MAG)).short().view(storage)


def round_toward64(x: torch.Tensor, storage: torch.dtype, up: bool) -> torch.Tensor:
    """The ``storage`` value nearest float64 ``x`` that is ``>= x`` (``up``) or ``<= x``."""
    y = x.to(storage)
    wrong = (y.double() < x) if up else (y.double() > x)
    if bool(wrong.any()):
        y = torch.where(wrong, torch.nextafter(y, torch.full_like(y, float("inf") if up else float("-inf"))), y)
    return y


def _edge(lo: torch.Tensor, width: torch.Tensor, hi: torch.Tensor, j: torch.Tensor, scale: torch.Tensor,
          ) -> torch.Tensor:
    """Float64 ``e(j)`` (see the module docs); ``lo``/``hi`` float64, ``width = hi - lo``, ``scale = 2**-k``.
    ``lo + width * 0`` is ``lo`` (up to the sign of a zero), so only the last edge needs a special case."""
    t = j.double() * scale
    return torch.where(t >= 1, hi, torch.minimum(lo + width * t, hi))


def _cell(w64: torch.Tensor, lo64: torch.Tensor, hi64: torch.Tensor, k: torch.Tensor,
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(j, e(j), e(j + 1))`` of each float64 weight ``w64`` inside float64 ``[lo64, hi64]`` at level ``k``."""
    width, scale, n = hi64 - lo64, torch.exp2(-k.double()), torch.ones_like(k) << k
    last = torch.where(width > 0, n - 1, 0)         # a zero-width candidate is one cell, number 0
    guess = torch.floor((w64 - lo64) / torch.where(width > 0, width, 1.0) * n.double())
    j = torch.minimum(torch.clamp(guess, min=0).long(), last)
    e_lo, e_hi = _edge(lo64, width, hi64, j, scale), _edge(lo64, width, hi64, j + 1, scale)
    bad = (e_lo > w64) | ((j < last) & (e_hi <= w64))
    if bool(bad.any()):     # floating point put the guess a cell off: bisect those elements
        sel = bad.nonzero(as_tuple=True)
        pick = lambda t: torch.broadcast_to(t, w64.shape)[sel]
        j[sel] = _bisect(w64[sel], lo64[sel], width[sel], hi64[sel], pick(scale), last[sel])
        e_lo[sel] = _edge(lo64[sel], width[sel], hi64[sel], j[sel], pick(scale))
        e_hi[sel] = _edge(lo64[sel], width[sel], hi64[sel], j[sel] + 1, pick(scale))
    return j, e_lo, e_hi


def cell_index(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Int64 cell of each weight ``w`` (inside ``[lo, hi]``) at level ``k`` (int64, broadcastable)."""
    return _cell(w.double(), lo.double(), hi.double(), k)[0]


def cell_of(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, k: torch.Tensor, storage: torch.dtype,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The box of each weight: ``cell_box(lo, hi, k, cell_index(w, lo, hi, k), storage)`` in one pass."""
    _, e_lo, e_hi = _cell(w.double(), lo.double(), hi.double(), k)
    return round_toward64(e_lo, storage, up=True), round_toward64(e_hi, storage, up=False)


def _bisect(w64: torch.Tensor, lo64: torch.Tensor, width: torch.Tensor, hi64: torch.Tensor, scale: torch.Tensor,
            last: torch.Tensor) -> torch.Tensor:
    """The largest ``j`` in ``[0, last]`` with ``e(j) <= w``, by bisection (for the rare bad guesses)."""
    good, bad = torch.zeros_like(last), last + 1
    while bool((bad - good > 1).any()):
        mid = (good + bad) // 2
        ok = _edge(lo64, width, hi64, mid, scale) <= w64
        good, bad = torch.where(ok, mid, good), torch.where(ok, bad, mid)
    return good


def cell_box(lo: torch.Tensor, hi: torch.Tensor, k: torch.Tensor, j: torch.Tensor, storage: torch.dtype,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell ``j`` of ``[lo, hi]`` at level ``k``, rounded inward to ``storage`` (inside the candidate rounded
    inward, since ``lo <= e(j) <= hi``)."""
    lo64, hi64 = lo.double(), hi.double()
    width, scale = hi64 - lo64, torch.exp2(-k.double())
    box_lo = round_toward64(_edge(lo64, width, hi64, j, scale), storage, up=True)
    return box_lo, round_toward64(_edge(lo64, width, hi64, j + 1, scale), storage, up=False)


def grid_count(lo: torch.Tensor, hi: torch.Tensor, storage: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(count, first)``: how many ``storage`` values lie in ``[lo, hi]`` (int64, at least 1 when the interval
    holds one) and the key of the first (see :func:`storage_key`)."""
    first = storage_key(round_toward64(lo.double(), storage, up=True), storage)
    last = storage_key(round_toward64(hi.double(), storage, up=False), storage)
    return last - first + 1, first


def bit_length(x: torch.Tensor) -> torch.Tensor:
    """Bits needed to write each non-negative int64 ``x`` (0 for 0), exact below ``2**53``."""
    return torch.frexp(x.double())[1].long()
