"""bitsandbytes boxes (NF4/FP4 blockwise, LLM.int8 row-wise) in one compiled pass per chunk (numba, blocks or
rows one after the other, releasing the GIL).

Same boxes, bit for bit, as the registry's ``fmt.preimage`` (:mod:`compsec.formats.bnb`,
:mod:`compsec.formats.bnb_int8`, snapped to the storage dtype by ``compsec.formats.base.snap_inward``): the block
(row) abs-max and multiplier are computed as bitsandbytes does, abs-max weights are pinned, every other weight's
interval is the furthest float32 on either side keeping its code (:func:`compsec.scan.float32_search.furthest_keeping`),
within ``[-absmax, absmax]``.  int8 works on the float16 cast of each weight (``Int8Params`` casts first): the
float32 interval of the float16 values keeping the code, shrunk to float16 values, then widened to every float32
whose cast lands there (:func:`compsec.formats.half_cast.preimage_of_half`'s closed form).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from compsec.scan.float32_search import (
    BNB4,
    INT8,
    code_at,
    from_key32,
    furthest_keeping,
    key32,
    storage_down,
    storage_up,
)
from compsec.scan.storage_grid import next_down, next_up, spacing_at

_F32 = np.float32
_TINY = np.float32(1e-38)  # bitsandbytes clamps an abs-max below this
_HALF = (10, 15, 65504.0)  # float16 grid: mantissa bits, bias, largest value
_NO_MIDS = np.zeros(0, np.float32)


@njit(cache=True, nogil=True)
def all_finite(x):
    """Whether every value of float32 ``x`` is finite."""
    for v in x:
        if not np.isfinite(v):
            return False
    return True


@njit(cache=True, error_model="numpy", nogil=True)
def bnb4_box(x, blocksize, mids, mantissa, bias, lo, hi):
    """Fill float32 ``lo``/``hi`` (flat, like ``x``: the float32 values of the weights) with the 4-bit box, blocks
    of ``blocksize`` flat weights (a partial last block divides by its abs-max, as bitsandbytes does).  Edges are
    searched once per (block, bucket) present."""
    n = x.size
    seen, lo_of, hi_of = np.full(mids.size + 1, -1, np.int64), np.empty(mids.size + 1, np.float32), np.empty(
        mids.size + 1, np.float32)
    for b in range((n + blocksize - 1) // blocksize):
        start, end = b * blocksize, min(n, (b + 1) * blocksize)
        a = _F32(0.0)
        for i in range(start, end):
            a = max(a, abs(x[i]))
        tail = end - start < blocksize
        if tail:
            a = max(a, _TINY)
        recip = _F32(1.0) / max(a, _TINY)
        divisor = a if tail else _F32(0.0)
        for i in range(start, end):
            v = x[i]
            if abs(v) == a:
                lo[i], hi[i] = v, v
                continue
            code = code_at(BNB4, mids, recip, divisor, 0, v)
            c = int(code)
            if seen[c] != b:
                seen[c] = b
                guess_lo = mids[c - 1] * a if c > 0 else -a
                guess_hi = mids[c] * a if c < mids.size else a
                low = furthest_keeping(BNB4, mids, recip, divisor, 0, code, v, -a, guess_lo)
                high = furthest_keeping(BNB4, mids, recip, divisor, 0, code, v, a, guess_hi)
                lo_of[c], hi_of[c] = storage_up(low, mantissa, bias), storage_down(high, mantissa, bias)
            lo[i], hi[i] = lo_of[c], hi_of[c]


@njit(cache=True)
def _half_edge(x16, up):
    """``half_cast._edge``: the outermost float32 whose float16 cast is not beyond float16 ``x16`` (``up``: above)."""
    v = np.float64(x16)
    neighbour = next_up(v, 10, 15, _HALF[2]) if up else next_down(v, 10, 15, _HALF[2])
    neighbour = min(max(neighbour, -65536.0), 65536.0)
    midpoint = _F32((v + neighbour) * 0.5)
    odd = int(abs(v) / spacing_at(abs(v), 10, 15)) & 1
    if not odd:
        return midpoint
    k = key32(midpoint)
    return from_key32(k - 1 if up else k + 1)  # one float32 inward


@njit(cache=True, error_model="numpy", nogil=True)
def int8_box(x, half, absmax, scale, mantissa, bias, lo, hi):
    """Fill ``lo``/``hi`` (flat, like ``x``) with the LLM.int8 box of the float32 values ``x``, given their float16
    casts ``half`` (as float32) and per row the abs-max of ``half`` and bitsandbytes' multiplier ``127 / absmax``
    (computed by torch: its scalar division is not IEEE division).  Edges are searched once per (row, code)."""
    cols = x.size // absmax.size
    seen, lo_of, hi_of = np.full(256, -1, np.int64), np.empty(256, np.float32), np.empty(256, np.float32)
    for r in range(absmax.size):
        start, a = r * cols, absmax[r]
        for i in range(start, start + cols):
            v, h = x[i], half[i]
            if abs(h) == a:
                lo[i], hi[i] = v, v
                continue
            code = code_at(INT8, _NO_MIDS, scale[r], _F32(0.0), 0, h)
            c = int(code) + 128
            if seen[c] != r:
                seen[c] = r
                low = furthest_keeping(INT8, _NO_MIDS, scale[r], _F32(0.0), 0, code, h, -a, _F32((code - 0.5) / scale[r]))
                high = furthest_keeping(INT8, _NO_MIDS, scale[r], _F32(0.0), 0, code, h, a, _F32((code + 0.5) / scale[r]))
                low16, high16 = storage_up(low, 10, 15), storage_down(high, 10, 15)
                lo_of[c] = storage_up(_half_edge(low16, False), mantissa, bias)
                hi_of[c] = storage_down(_half_edge(high16, True), mantissa, bias)
            lo[i], hi[i] = lo_of[c], hi_of[c]
