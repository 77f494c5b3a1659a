"""The edge tally of one (tensor, format) in a single compiled pass over the weights (numba).

Same counts, three ways, as :func:`compsec.scan.tally.edge_tally` (the torch reference, see its module docs):
uniform-grid intervals by integer steps, fine grids by float32 positions, the rest by exact float64 cell masses
(:func:`compsec.scan.null.band_masses` per weight).  The reference spends ~60 tensor operations and int64/float64
temporaries per weight; this pass reads the raw bits of ``w``, ``lo``, ``hi`` (zero-copy views) once and keeps
only the sums.  Expectations are summed weight by weight instead of per interval width, so they agree with the
reference's to float64 rounding (relative 1e-12), the counts exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from compsec.scan.storage_grid import exponent_field, grid_ceil, grid_floor, key_of_bits, next_down, next_up

# counts: weights, trials, hits, edge_all, outer, fine-grid weights, fine-grid trials (their expectations are the
# continuous masses, added by the caller); sums: edge, edge_all, outer expectation and variance of the other weights
N_COUNTS, N_SUMS = 7, 6


@njit(cache=True, inline="always")
def _band(lo, hi, eps, mantissa, bias, largest):
    """``band_masses`` of one interval: thresholds ``a, b, c, d`` and masses ``edge, adjacent, interval``."""
    width = hi - lo
    a, c = grid_floor(lo + eps * width, mantissa, bias), grid_floor(lo + 3 * eps * width, mantissa, bias)
    b, d = grid_ceil(hi - eps * width, mantissa, bias), grid_ceil(hi - 3 * eps * width, mantissa, bias)
    lo_cell = (next_down(lo, mantissa, bias, largest) + lo) / 2
    hi_cell = (hi + next_up(hi, mantissa, bias, largest)) / 2
    up_a, up_c = (a + next_up(a, mantissa, bias, largest)) / 2, (c + next_up(c, mantissa, bias, largest)) / 2
    low_b, low_d = (next_down(b, mantissa, bias, largest) + b) / 2, (next_down(d, mantissa, bias, largest) + d) / 2
    return a, b, c, d, (up_a - lo_cell) + (hi_cell - low_b), (up_c - up_a) + (low_b - low_d), hi_cell - lo_cell


@njit(cache=True)
def _exact_weight(w, lo, hi, eps, band, mantissa, bias, largest):
    """One weight by exact float64 cell masses (``exact_tally``, ``folded_counts``): ``(trial, p, in_edge,
    p_abs, outer, p_out, spike_bin)`` (``spike_bin`` -1: too few grid values for the position histogram)."""
    a, b, c, d, edge, adjacent, interval = _band(lo, hi, eps, mantissa, bias, largest)
    in_edge = w <= a or w >= b
    local = adjacent > 0
    absolute = edge / interval
    trial = not local or in_edge or w <= c or w >= d
    p = edge / (edge + adjacent) if local else absolute
    _, _, wc, wd, wedge, wadjacent, winterval = _band(lo, hi, band / 3, mantissa, bias, largest)
    p_out = min(max((wedge + wadjacent) / winterval, 0.0), 1.0)
    width, spike_bin = hi - lo, -1
    if width >= 800 * (next_up(w, mantissa, bias, largest) - w):  # 2 * BINS * MIN_GRID_PER_BIN grid values
        pos = (w - lo) / width
        spike_bin = int(min(max(min(pos, 1 - pos), 0.0), 0.5 - 1e-12) * 200)
    return trial, p, in_edge, absolute, w <= wc or w >= wd, p_out, spike_bin


@njit(cache=True)
def _uniform_weight(j, steps, fe, fa, fo):
    """One weight on a uniform grid, ``j`` of ``steps`` grid steps above ``lo``, with ``fe, fa, fo`` grid steps
    in its edge band, edge + adjacent bands and outer band: the same tuple as :func:`_exact_weight`."""
    near = min(j, steps - j)
    edge, adjacent = near <= fe, near <= fa
    size = steps + 1.0
    p_abs = min(2 * (fe + 1) / size, 1.0)
    local = fa > fe
    p = (fe + 1) / (fa + 1.0) if local else p_abs
    spike_bin = int(min(max(near / steps, 0.0), 0.5 - 1e-12) * 200) if steps >= 800 else -1
    return not local or adjacent, p, edge, p_abs, near <= fo, min(2 * (fo + 1) / size, 1.0), spike_bin


@njit(cache=True, nogil=True)
def tally_pass(w_bits, lo_bits, hi_bits, w_vals, lo_vals, hi_vals, mantissa, bias, magnitude_mask, largest, eps, band, fe, fa, fo,
               row_length, n_rows, max_steps, fine_steps):
    """Sums over every non-pinned finite weight: ``(counts[7], sums[6], spike[100], row_counts[n_rows, 2],
    row_expected[n_rows])`` (``N_COUNTS``, ``N_SUMS``; :func:`single_pass_tally`
    makes an :class:`~compsec.scan.tally.EdgeTally` of them)."""
    counts, sums = np.zeros(N_COUNTS, np.int64), np.zeros(N_SUMS, np.float64)
    spike, row_counts, row_expected = np.zeros(100, np.int64), np.zeros((n_rows, 2), np.int64), np.zeros(n_rows)
    f_eps, f_adj, f_band = np.float32(eps), np.float32(3 * eps), np.float32(band)
    f_one, f_clamp, f_bins = np.float32(1.0), np.float32(0.5 - 1e-7), np.float32(200.0)
    for i in range(w_bits.size):
        k_lo, k_hi = key_of_bits(lo_bits[i], magnitude_mask), key_of_bits(hi_bits[i], magnitude_mask)
        lo, hi = np.float64(lo_vals[i]), np.float64(hi_vals[i])
        if not (hi > lo) or not (abs(lo) <= largest and abs(hi) <= largest):
            continue
        r = i // row_length
        steps = k_hi - k_lo
        e_lo, e_hi = exponent_field(k_lo - 1, mantissa), exponent_field(k_hi + 1, mantissa)
        if e_lo == e_hi and (k_lo - 1 >= 0) == (k_hi + 1 >= 0) and steps <= max_steps:
            j = key_of_bits(w_bits[i], magnitude_mask) - k_lo
            trial, p, edge, p_abs, outer, p_out, spike_bin = _uniform_weight(j, steps, fe[steps], fa[steps], fo[steps])
        else:
            coarsest = math.ldexp(1.0, max(e_lo, e_hi) - bias - mantissa)
            w = np.float64(w_vals[i])
            if hi - lo >= fine_steps * coarsest:
                lo32 = lo_vals[i]
                pos = (w_vals[i] - lo32) / (hi_vals[i] - lo32)
                near32 = min(max(min(pos, f_one - pos), np.float32(0.0)), f_clamp)
                edge, adjacent = near32 <= f_eps, near32 <= f_adj
                counts[0] += 1
                counts[3] += edge
                counts[4] += near32 <= f_band
                counts[5] += 1
                if adjacent:
                    counts[1] += 1
                    counts[6] += 1
                    row_counts[r, 1] += 1
                    row_expected[r] += 1 / 3
                    if edge:
                        counts[2] += 1
                        row_counts[r, 0] += 1
                spike[int(near32 * f_bins)] += 1
                continue
            trial, p, edge, p_abs, outer, p_out, spike_bin = _exact_weight(w, lo, hi, eps, band, mantissa, bias,
                                                                           largest)
        counts[0] += 1
        counts[3] += edge
        counts[4] += outer
        sums[2] += p_abs
        sums[3] += p_abs * (1 - p_abs)
        sums[4] += p_out
        sums[5] += p_out * (1 - p_out)
        if trial:
            counts[1] += 1
            sums[0] += p
            sums[1] += p * (1 - p)
            row_counts[r, 1] += 1
            row_expected[r] += p
            if edge:
                counts[2] += 1
                row_counts[r, 0] += 1
        if spike_bin >= 0:
            spike[spike_bin] += 1
    return counts, sums, spike, row_counts, row_expected


def single_pass_tally(w, lo, hi, eps: float):
    """:func:`compsec.scan.tally.edge_tally` of ``w`` in ``[lo, hi]`` (same shape and storage dtype) in one pass."""
    import torch

    from compsec.scan.storage_grid import BIT_VIEWS, GRID_PARAMS, LARGEST
    from compsec.scan.tally import BINS, FINE_STEPS, UNIFORM_MAX_STEPS, WIDE_BAND, EdgeTally, _floors

    n_rows = w.shape[0] if w.dim() == 2 else 1
    if w.numel() == 0:
        return EdgeTally(rows=torch.zeros(n_rows, 3, dtype=torch.float64))
    mantissa, bias, mask = GRID_PARAMS[w.dtype]
    bits = [t.contiguous().view(BIT_VIEWS[w.dtype]).reshape(-1).numpy() for t in (w, lo, hi)]
    held = [t.reshape(-1).float().contiguous() for t in (w, lo, hi)]  # exact: float32 holds every storage value
    values = [t.numpy() for t in held]
    fe, fa, fo = (t.numpy() for t in _floors(eps))
    counts, sums, spike, row_counts, row_expected = tally_pass(
        *bits, *values, mantissa, bias, mask, LARGEST[w.dtype], eps, WIDE_BAND, fe, fa, fo, w.numel() // n_rows, n_rows,
        UNIFORM_MAX_STEPS, float(FINE_STEPS))
    n, total, fine_n, fine_trials = int(counts[0]), int(counts[1]), int(counts[5]), int(counts[6])
    p_abs, p_out = 2 * eps, 2 * WIDE_BAND
    rows = torch.cat([torch.from_numpy(row_counts).double(), torch.from_numpy(row_expected).unsqueeze(1)], dim=1)
    return EdgeTally(n, total, int(counts[2]), float(sums[0]) + fine_trials / 3, float(sums[1]) + fine_trials * 2 / 9,
                     int(counts[3]), float(sums[2]) + fine_n * p_abs, float(sums[3]) + fine_n * p_abs * (1 - p_abs),
                     int(counts[4]), float(sums[4]) + fine_n * p_out, float(sums[5]) + fine_n * p_out * (1 - p_out),
                     torch.from_numpy(spike)[:BINS].clone(), rows)
