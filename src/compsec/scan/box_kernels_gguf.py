"""GGUF boxes in one compiled pass per chunk (numba, releasing the GIL): the legacy ``q8_0``/``q4_0``/``q5_0``
preimage and the K-quants' fixed-scale box.

Same boxes, bit for bit, as the registry (:func:`compsec.formats.gguf_box.block_box`,
:func:`compsec.formats.gguf_k_box.candidate_box`, snapped to the storage dtype): codes and block parameters are
computed with ggml's float32 arithmetic, the pinned weights and search limits are the registry's, and each other
weight's edges are the furthest float32 keeping its code (:func:`compsec.scan.float32_search.furthest_keeping`).
For the K-quants the codes and sub-block scales come from llama.cpp's own scale search (the caller runs it).
Each kernel returns False where the registry would raise (a code that does not follow from its weight).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from compsec.scan.float32_search import (
    K_MIN,
    K_SYM,
    Q4_0,
    Q8_0,
    code_at,
    from_key32,
    furthest_keeping,
    key32,
    storage_down,
    storage_up,
)

_F32 = np.float32
_NO_MIDS = np.zeros(0, np.float32)
BLOCK = 32


@njit(cache=True, error_model="numpy")
def _legacy_params(x, start, pinned, kind, level):
    """``(d, inv, signed max or abs-max, index of the first one)`` of one block from its ``pinned`` weights (all
    weights when ``pinned`` is None), as ``gguf_math.sym_params`` / ``signed_max_params``."""
    best, at = _F32(-1.0), 0
    for j in range(BLOCK):
        v = x[start + j] if pinned is None or pinned[j] else _F32(0.0)
        if abs(v) > best:
            best, at = abs(v), j
    m = x[start + at] if pinned is None or pinned[at] else _F32(0.0)
    d = best / _F32(127.0) if kind == Q8_0 else m / _F32(-level)
    return d, (_F32(0.0) if d == _F32(0.0) else _F32(1.0) / d), (best if kind == Q8_0 else m), at


@njit(cache=True, error_model="numpy")
def _stored_code(kind, inv, lev, v):
    """The code ggml stores (numpy casts inf/NaN to 0, then Q4_0/Q5_0 clip): ``code_of(..., cast=True)``."""
    c = np.trunc(v * inv + (lev + _F32(0.5))) if kind == Q4_0 else _F32(code_at(kind, _NO_MIDS, inv, lev, 0, v))
    c = c if np.isfinite(c) else _F32(0.0)
    return min(max(c, _F32(0.0)), _F32(2.0) * lev - _F32(1.0)) if kind == Q4_0 else c


@njit(cache=True, error_model="numpy")
def _toward_zero(v):
    """``torch.nextafter(v, 0.0)`` (a zero gives +0.0)."""
    return _F32(0.0) if v == _F32(0.0) else from_key32(key32(v) - 1 if v > 0 else key32(v) + 1)


@njit(cache=True, error_model="numpy", nogil=True)
def legacy_box(x, kind, level, mantissa, bias, lo, hi):
    """Fill ``lo``/``hi`` with the Q8_0 (``kind`` Q8_0, ``level`` 127) or Q4_0/Q5_0 (Q4_0, ``level`` 8/16) box of
    float32 ``x`` (flat, blocks of 32); False when the registry would raise.  Edges are searched once per (block,
    code, side of the signed max) present."""
    ok = True
    lev = _F32(level)
    shift = lev + _F32(0.5) if kind == Q4_0 else _F32(0.5)
    codes, pinned = np.empty(BLOCK, np.float32), np.zeros(BLOCK, np.bool_)
    seen, lo_of, hi_of = np.full(1024, -1, np.int64), np.empty(1024, np.float32), np.empty(1024, np.float32)
    for b in range(x.size // BLOCK):
        s = b * BLOCK
        _, inv, _, _ = _legacy_params(x, s, None, kind, level)
        present = False
        for j in range(BLOCK):
            codes[j] = _stored_code(kind, inv, lev, x[s + j])
            pinned[j] = abs(codes[j]) == lev if kind == Q8_0 else codes[j] == _F32(0.0)
            present |= pinned[j]
        d, inv, m, at = _legacy_params(x, s, pinned if present else None, kind, level)
        for j in range(BLOCK):
            pinned[j] |= not present
            v, c = x[s + j], codes[j]
            if kind == Q8_0:
                low, high, centre = -m, m, c * d
            else:
                opposite = _toward_zero(-m) if j < at else -m
                low, high = (m, opposite) if np.signbit(m) else (opposite, m)
                centre = (c - lev) * d
            start = v if pinned[j] else centre
            if _stored_code(kind, inv, lev, start) != c or not low <= start <= high:
                ok = False
            if pinned[j]:
                lo[s + j], hi[s + j] = v, v
                continue
            key = 2 * (int(c) + 255) + (j < at)
            if seen[key] != b:
                seen[key] = b
                e1 = _F32((np.float64(c) - shift) / inv)
                e2 = _F32((np.float64(c) + (0.5 if kind == Q8_0 else 1.0 - shift)) / inv)
                low = furthest_keeping(kind, _NO_MIDS, inv, lev, 0, np.float64(c), start, low, min(e1, e2))
                high = furthest_keeping(kind, _NO_MIDS, inv, lev, 0, np.float64(c), start, high, max(e1, e2))
                lo_of[key], hi_of[key] = storage_up(low, mantissa, bias), storage_down(high, mantissa, bias)
            lo[s + j], hi[s + j] = lo_of[key], hi_of[key]
    return ok


@njit(cache=True, error_model="numpy")
def _sub_limits(x, s, sub, pinned, has_min):
    """``gguf_k_box.seed_limits`` of one sub-block: ``(min(min, 0), max)`` of its pinned weights, or the
    ``(-amax, amax)`` of their magnitudes."""
    low, high = _F32(np.inf), _F32(-np.inf) if has_min else _F32(0.0)
    for j in range(sub):
        if pinned[j]:
            v = x[s + j]
            low, high = (min(low, v), max(high, v)) if has_min else (low, max(high, abs(v)))
    return (min(low, _F32(0.0)), high) if has_min else (-high, high)


@njit(cache=True, error_model="numpy", nogil=True)
def kquant_box(x, codes, step, shift, sub, has_min, limit, mantissa, bias, lo, hi):
    """Fill ``lo``/``hi`` with the fixed-scale box of float32 ``x`` (flat) given llama.cpp's ``codes`` and the
    per-sub-block ``step``/``shift`` (:func:`compsec.formats.gguf_k_layout.sub_scales`); ``limit``: ``nmax``
    (types with a minimum) or ``offset``.  False when the registry would raise.  Edges are searched once per
    (sub-block, code) present."""
    kind, offset = (K_MIN, _F32(0.0)) if has_min else (K_SYM, _F32(limit))
    ok = True
    top = limit if has_min else 2 * limit - 1
    pinned = np.zeros(sub, np.bool_)
    seen, lo_of, hi_of = np.full(256, -1, np.int64), np.empty(256, np.float32), np.empty(256, np.float32)
    for g in range(step.size):
        s, st, sh = g * sub, step[g], shift[g]
        a_min, a_max, amax = _F32(np.inf), _F32(-np.inf), _F32(0.0)
        for j in range(sub):
            a_min, a_max, amax = min(a_min, x[s + j]), max(a_max, x[s + j]), max(amax, abs(x[s + j]))
        for j in range(sub):
            v = x[s + j]
            pinned[j] = st == _F32(0.0) or (v == a_min or v == a_max if has_min else abs(v) == amax)
            if not pinned[j] and code_at(kind, _NO_MIDS, st, sh, limit, v) != codes[s + j]:
                ok = False
        low, high = _sub_limits(x, s, sub, pinned, has_min)
        for j in range(sub):  # weights whose dequantized value (clamped into the range) loses the code
            start = min(max(st * (_F32(codes[s + j]) - offset) - sh, low), high)
            if not pinned[j] and code_at(kind, _NO_MIDS, st, sh, limit, start) != codes[s + j]:
                pinned[j] = True
        low, high = _sub_limits(x, s, sub, pinned, has_min)
        for j in range(sub):
            i, v, c = s + j, x[s + j], np.float64(codes[s + j])
            if pinned[j]:
                lo[i], hi[i] = v, v
                continue
            if seen[codes[i]] != g:
                seen[codes[i]] = g
                start = min(max(st * (_F32(c) - offset) - sh, low), high)
                e1 = _F32(-np.inf * np.sign(st) if c == 0 else (c - offset - 0.5) * np.float64(st) - sh)
                e2 = _F32(np.inf * np.sign(st) if c == top else (c - offset + 0.5) * np.float64(st) - sh)
                lo_of[codes[i]] = storage_up(furthest_keeping(kind, _NO_MIDS, st, sh, limit, c, start, low,
                                                              min(e1, e2)), mantissa, bias)
                hi_of[codes[i]] = storage_down(furthest_keeping(kind, _NO_MIDS, st, sh, limit, c, start, high,
                                                                max(e1, e2)), mantissa, bias)
            lo[i], hi[i] = lo_of[codes[i]], hi_of[codes[i]]
    return ok
