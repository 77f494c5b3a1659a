"""Scalar building blocks of the compiled box kernels (numba): exact float32 arithmetic of each format's code, and
the furthest float32 keeping a code.

The registry finds a box edge with vectorised torch searches (:func:`compsec.formats.float_grid.furthest_true`,
:func:`compsec.formats.float_edges.lower_edges`): a guess checked with the format's real float32 arithmetic, then
a bisection over the ordered integer keys of float32 values.  Because a code is a monotone function of the weight,
the edge is unique whatever the search path, so the same search done weight by weight here
(:func:`furthest_keeping`) gives bit-identical edges (tested against the registry in
``tests/scan/test_box_kernels.py``).

:func:`code_at` evaluates one format's code of a float32 ``x`` with ``float32`` operations only (numba keeps
``float32 * float32`` in float32 and never contracts to FMA without ``fastmath``), returned as float64 so that NaN
codes (which keep nothing) compare unequal, as in torch.  ``kind`` selects the arithmetic:

- ``BNB4``: bitsandbytes 4-bit bucket, ``x * recip`` (``p1 == 0``) or ``x / p1`` (a partial last block);
- ``INT8``: LLM.int8 code, ``int8(round_half_even(x * scale))``;
- ``Q8_0``: ggml's ``roundf(x * inv)`` (half away from zero);
- ``Q4_0``: ``clamp(trunc(x * inv + (level + 0.5)), 0, 2 level - 1)`` (``p1 = level``);
- ``K_MIN`` / ``K_SYM``: ggml's ``nearest_int((x + shift) / step)`` clamped to ``[0, nmax]`` (``p1 = shift``,
  ``p2 = nmax``), or ``nearest_int(x / step)`` clamped to ``[-offset, offset - 1]`` plus ``offset`` (``p2``).

Every function is compiled once and cached on disk (``cache=True``).  numba invalidates a cached function only
when *its own* file changes: after editing this file or :mod:`compsec.scan.storage_grid`, delete
``src/compsec/scan/__pycache__/*.nbi`` and ``*.nbc`` so the kernels that call them are recompiled.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from compsec.scan.storage_grid import bitcast, grid_ceil, grid_floor

BNB4, INT8, Q8_0, Q4_0, K_MIN, K_SYM = 0, 1, 2, 3, 4, 5
_F32 = np.float32
_MAGIC = np.float32(12582912.0)  # ggml's nearest_int: 1.5 * 2**23


bits32, float32_of = bitcast(types.float32, types.int32), bitcast(types.int32, types.float32)  # bit patterns


@njit(cache=True)
def key32(x):
    """Ordered int64 key of float32 ``x`` (-0.0 just below +0.0; adjacent floats differ by 1)."""
    b = np.int64(bits32(x))
    return b if b >= 0 else -(b & 0x7FFFFFFF) - 1


@njit(cache=True)
def from_key32(k):
    """Inverse of :func:`key32`."""
    return float32_of(np.int32(k if k >= 0 else (-k - 1) - (1 << 31)))


@njit(cache=True, error_model="numpy")
def _round_half_even(v):
    f = np.floor(v)
    d = v - f
    return f + _F32(1.0) if d > _F32(0.5) or (d == _F32(0.5) and f % _F32(2.0) != _F32(0.0)) else f


@njit(cache=True, error_model="numpy")
def _round_half_away(n):
    a = abs(n)
    f = np.floor(a)
    return np.sign(n) * (f + np.floor(_F32(2.0) * (a - f)))


@njit(cache=True, error_model="numpy")
def _nearest_int(f):
    return np.float64((np.int64(bits32(f + _MAGIC)) & 0x007FFFFF) - 0x00400000)


@njit(cache=True, error_model="numpy")
def _clamp(v, low, high):
    """torch's clamp: NaN stays NaN."""
    return v if np.isnan(v) else min(max(v, low), high)


@njit(cache=True, error_model="numpy")
def code_at(kind, mids, p0, p1, p2, x):
    """The code of float32 ``x`` under one format's parameters (see the module docs), as float64."""
    if kind == BNB4:
        scaled = x / p1 if p1 != _F32(0.0) else x * p0
        low, high = 0, mids.size  # bucketize: the number of midpoints strictly below ``scaled``
        while low < high:
            mid = (low + high) // 2
            if mids[mid] < scaled:
                low = mid + 1
            else:
                high = mid
        return np.float64(low)
    if kind == INT8:
        v = _round_half_even(x * p0)
        return np.float64(v) if np.isfinite(v) else 0.0
    if kind == Q8_0:
        return np.float64(_round_half_away(x * p0))
    if kind == Q4_0:
        return np.float64(_clamp(np.trunc(x * p0 + (p1 + _F32(0.5))), _F32(0.0), _F32(2.0) * p1 - _F32(1.0)))
    if kind == K_MIN:
        return _clamp(_nearest_int((x + p1) / p0), 0.0, np.float64(p2))
    return _clamp(_nearest_int(x / p0), -np.float64(p2), np.float64(p2) - 1.0) + np.float64(p2)


@njit(cache=True, error_model="numpy")
def _keeps(kind, mids, p0, p1, p2, code, k0, step, off):
    """Whether the float ``off`` floats from key ``k0`` has ``code`` (a bnb bucket: between its two midpoints)."""
    x = from_key32(k0 + step * off)
    if kind != BNB4:
        return code_at(kind, mids, p0, p1, p2, x) == code
    scaled = x / p1 if p1 != _F32(0.0) else x * p0
    c = int(code)
    return (c == 0 or mids[c - 1] < scaled) and (c == mids.size or scaled <= mids[c])


@njit(cache=True, error_model="numpy")
def furthest_keeping(kind, mids, p0, p1, p2, code, start, stop, guess):
    """The float32 furthest from ``start`` towards ``stop`` (never past it) whose code is ``code`` on the whole
    way (``start`` keeps it; the codes along the way are monotone).  ``guess`` (NaN: none) only saves time: from
    it the search gallops outward (1, 2, 4, ... floats) to a bracket, then bisects it."""
    k0, k1 = key32(start), key32(stop)
    if k0 == k1:
        return start
    step = 1 if k1 > k0 else -1
    span = (k1 - k0) * step
    good, bad = 0, span + 1  # offsets (in floats from start) known to keep / assumed to lose the code
    if not np.isnan(guess):
        off, delta = min(max((key32(guess) - k0) * step, 0), span), 1
        if _keeps(kind, mids, p0, p1, p2, code, k0, step, off):
            good = off
            while good + delta <= span and _keeps(kind, mids, p0, p1, p2, code, k0, step, good + delta):
                good, delta = good + delta, delta * 2
            bad = min(good + delta, span + 1)
        else:
            bad = off
            while bad - delta > good and not _keeps(kind, mids, p0, p1, p2, code, k0, step, bad - delta):
                bad, delta = bad - delta, delta * 2
            good = max(bad - delta, good)
    while bad - good > 1:
        mid = (good + bad) // 2
        if _keeps(kind, mids, p0, p1, p2, code, k0, step, mid):
            good = mid
        else:
            bad = mid
    return from_key32(k0 + step * good)


@njit(cache=True)
def storage_up(x, mantissa, bias):
    """The smallest value of the storage grid (``mantissa`` bits, exponent ``bias``) ``>= x`` as float32, as
    ``compsec.formats.base.round_toward(up=True)`` gives it (a tiny negative ``x`` snaps to ``-0.0``)."""
    if mantissa == 23 or x == 0:
        return x
    return _F32(grid_ceil(np.float64(x), mantissa, bias))


@njit(cache=True)
def storage_down(x, mantissa, bias):
    """The largest storage value ``<= x`` (``round_toward(up=False)``; a tiny positive ``x`` snaps to ``+0.0``)."""
    if mantissa == 23 or x == 0:
        return x
    return _F32(grid_floor(np.float64(x), mantissa, bias))
