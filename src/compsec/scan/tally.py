"""Additive counts behind the edge tests, so that a tensor can be scanned in chunks of rows and every weight
counted without keeping its box: one :class:`EdgeTally` per (tensor, format), summed over chunks.

The edge-mass, edge-depletion, edge-band and position-spike tests (:mod:`compsec.scan.edge_mass`,
:mod:`~compsec.scan.edge_band`, :mod:`~compsec.scan.position_spike`) only need sums over weights: observed band
counts, their grid-aware expectations ``sum p_i`` and variances ``sum p_i (1 - p_i)``, and a histogram of folded
positions.  :func:`edge_tally` computes them in three ways, by how the storage grid lies in each interval:

- *uniform grid* (every grid value of ``[prev(lo), next(hi)]`` one ulp apart, at most ``UNIFORM_MAX_STEPS``
  steps): the interval holds ``n + 1`` values ``lo + j * ulp`` and every band and cell mass is an integer
  function of ``n`` (edge band: ``j <= floor(eps * n)`` from either side, mass ``2 (floor(eps * n) + 1)`` ulps of
  ``n + 1``), so the expectations come from a histogram over ``n``: exact, a few integer operations per weight;
- *fine grid* (more than ``FINE_STEPS`` coarsest ulps across the interval): cells are far below the band widths,
  so the masses are the continuous ones (edge vs adjacent 1/3, edge ``2 eps``, outer quarter 1/2) to within
  ``1 / (eps * FINE_STEPS)`` (0.15 % at ``eps = 0.01``);
- anything else (a coarse interval straddling zero or a binade): the exact float64 cell masses of
  :func:`compsec.scan.edge_mass.band_masses`, per weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache

import torch

from compsec.formats.cells import storage_key
from compsec.scan.null import band_masses

WIDE_BAND = 0.25  # edge-band test: outer quarter of an interval on either side
BINS = 100  # position-spike histogram over folded positions [0, 0.5]
MIN_GRID_PER_BIN = 4  # position spike counts a weight only with this many grid values per bin
UNIFORM_MAX_STEPS = 1 << 16
FINE_STEPS = 1 << 16
_MANTISSA = {torch.float32: (23, 127), torch.float16: (10, 15), torch.bfloat16: (7, 127)}


@dataclass
class EdgeTally:
    """Sums over the non-pinned weights of one tensor under one format (add chunks with :meth:`add`)."""

    weights: int = 0
    edge_trials: int = 0  # weights in the edge or adjacent band (or any, where the adjacent band is empty)
    edge_hits: int = 0  # of those, in the edge band
    edge_expected: float = 0.0
    edge_variance: float = 0.0
    edge_all: int = 0  # every weight in the edge band
    edge_all_expected: float = 0.0
    edge_all_variance: float = 0.0
    outer: int = 0  # weights in the outer WIDE_BAND on either side
    outer_expected: float = 0.0
    outer_variance: float = 0.0
    spike_counts: torch.Tensor = field(default_factory=lambda: torch.zeros(BINS, dtype=torch.int64))

    def add(self, other: EdgeTally) -> EdgeTally:
        """Add ``other``'s counts to these (in place) and return this tally."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


def edge_tally(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float) -> EdgeTally:
    """The tally of weights ``w`` in boxes ``[lo, hi]`` (same shape and storage dtype); pinned (``lo == hi``) and
    non-finite intervals are left out.  See the module docs for the three ways of counting."""
    keep = (hi > lo) & torch.isfinite(lo) & torch.isfinite(hi)
    w, lo, hi = w[keep], lo[keep], hi[keep]
    k_lo, k_hi = storage_key(lo, lo.dtype), storage_key(hi, hi.dtype)
    steps = k_hi - k_lo
    e_lo, e_hi = _exponent(k_lo - 1, lo.dtype), _exponent(k_hi + 1, lo.dtype)
    uniform = (e_lo == e_hi) & ((k_lo - 1 >= 0) == (k_hi + 1 >= 0))
    exact_steps = uniform & (steps <= UNIFORM_MAX_STEPS)
    mantissa, bias = _MANTISSA[lo.dtype]
    coarsest_ulp = torch.exp2((torch.maximum(e_lo, e_hi) - bias - mantissa).double())
    fine = ~exact_steps & ((hi.double() - lo.double()) >= FINE_STEPS * coarsest_ulp)
    rest = ~exact_steps & ~fine
    out = _uniform_tally(storage_key(w[exact_steps], w.dtype) - k_lo[exact_steps], steps[exact_steps], eps)
    return out.add(_fine_tally(w[fine], lo[fine], hi[fine], eps)).add(exact_tally(w[rest], lo[rest], hi[rest], eps))


def _exponent(key: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Biased exponent field of the values with ordered ``key`` (subnormals as 1: they share its ulp)."""
    magnitude = torch.where(key >= 0, key, -key - 1)
    return (magnitude >> _MANTISSA[dtype][0]).clamp(min=1)


@lru_cache(maxsize=8)
def _floors(eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``floor(x * n)`` for ``n = 0 .. UNIFORM_MAX_STEPS`` and ``x = eps, 3 eps, WIDE_BAND`` (int64)."""
    n = torch.arange(UNIFORM_MAX_STEPS + 1, dtype=torch.float64)
    return tuple(torch.floor(x * n).long() for x in (eps, 3 * eps, 3 * (WIDE_BAND / 3)))


def _uniform_tally(j: torch.Tensor, n: torch.Tensor, eps: float) -> EdgeTally:
    """Uniform-grid intervals: ``j`` steps of each weight above ``lo``, ``n`` steps from ``lo`` to ``hi``."""
    if n.numel() == 0:
        return EdgeTally()
    top = int(n.max()) + 1  # tables up to the widest interval present, not UNIFORM_MAX_STEPS
    fe, fa, fo = (t[:top] for t in _floors(eps))
    near = torch.minimum(j, n - j)
    cell = (near <= fe[n]).long() + (near <= fa[n]).long()  # 2 edge band, 1 adjacent band, 0 further in
    index = n * 6 + cell * 2 + (near <= fo[n]).long()
    counts = torch.bincount(index, minlength=6 * top).view(-1, 3, 2).double()
    per_n, edge, banded, outer = counts.sum((1, 2)), counts[:, 2].sum(1), counts[:, 1:].sum((1, 2)), counts[:, :, 1].sum(1)
    size = torch.arange(top, dtype=torch.float64) + 1
    local = fa > fe
    p_local = (fe + 1) / (fa + 1.0)
    p_abs, p_out = (2 * (fe + 1) / size).clamp(max=1.0), (2 * (fo + 1) / size).clamp(max=1.0)
    trials = torch.where(local, banded, per_n)
    p_trial = torch.where(local, p_local, p_abs)
    out = EdgeTally(int(per_n.sum()), int(trials.sum()), int(edge.sum()), float((trials * p_trial).sum()),
                    float((trials * p_trial * (1 - p_trial)).sum()), int(edge.sum()), float((per_n * p_abs).sum()),
                    float((per_n * p_abs * (1 - p_abs)).sum()), int(outer.sum()), float((per_n * p_out).sum()),
                    float((per_n * p_out * (1 - p_out)).sum()))
    fine = n >= 2 * BINS * MIN_GRID_PER_BIN
    folded = (near[fine].double() / n[fine].double()).clamp(0.0, 0.5 - 1e-12)
    out.spike_counts = torch.bincount((folded * 2 * BINS).long(), minlength=BINS)
    return out


def _fine_tally(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float) -> EdgeTally:
    """Fine-grid intervals: continuous masses, counts from the folded position ``min(p, 1 - p)``."""
    lo32 = lo.float()
    pos = (w.float() - lo32) / (hi.float() - lo32)
    near = torch.minimum(pos, 1 - pos).clamp(0.0, 0.5 - 1e-7)
    cell = (near <= eps).long() + (near <= 3 * eps).long()
    index = (cell * 2 + (near <= WIDE_BAND).long()) * BINS + (near * 2 * BINS).long()
    counts = torch.bincount(index, minlength=6 * BINS).view(3, 2, BINS)
    n, edge, banded = int(counts.sum()), int(counts[2].sum()), int(counts[1:].sum())
    outer, p_abs = int(counts[:, 1].sum()), 2 * eps
    return EdgeTally(n, banded, edge, banded / 3, banded * 2 / 9, edge, n * p_abs, n * p_abs * (1 - p_abs),
                     outer, n * 2 * WIDE_BAND, n * 2 * WIDE_BAND * (1 - 2 * WIDE_BAND), counts.sum((0, 1)))


def exact_tally(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float,
                band: float = WIDE_BAND) -> EdgeTally:
    """The tally from exact float64 cell masses per weight (any grid; ``w``, ``lo``, ``hi`` already filtered to
    non-pinned finite intervals; ``band``: the edge-band test's outer share)."""
    m = band_masses(lo, hi, eps)
    in_edge = (w <= m["a"]) | (w >= m["b"])
    in_band = in_edge | (w <= m["c"]) | (w >= m["d"])
    local = m["adjacent"] > 0
    trials = (local & in_band) | ~local
    p = torch.where(local, m["edge"] / (m["edge"] + m["adjacent"]), m["edge"] / m["interval"])[trials]
    absolute = m["edge"] / m["interval"]
    wide = band_masses(lo, hi, band / 3)  # outer thresholds c, d at 3 * (band / 3) from the edges
    p_out = ((wide["edge"] + wide["adjacent"]) / wide["interval"]).clamp(0.0, 1.0)
    return EdgeTally(int(w.numel()), int(trials.sum()), int(in_edge[trials].sum()), float(p.sum()),
                     float((p * (1 - p)).sum()), int(in_edge.sum()), float(absolute.sum()),
                     float((absolute * (1 - absolute)).sum()), int(((w <= wide["c"]) | (w >= wide["d"])).sum()),
                     float(p_out.sum()), float((p_out * (1 - p_out)).sum()), folded_counts(w, lo, hi))


def folded_counts(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Per-bin counts (``BINS``, int64) of folded positions of the weights whose interval is fine enough."""
    width = hi.double() - lo.double()
    ulp = (torch.nextafter(w, torch.full_like(w, float("inf"))).double() - w.double()).abs()
    fine = (hi > lo) & torch.isfinite(width) & (width >= 2 * BINS * MIN_GRID_PER_BIN * ulp)
    pos = ((w.double() - lo.double()) / width)[fine]
    folded = torch.minimum(pos, 1 - pos).clamp(0.0, 0.5 - 1e-12)
    return torch.bincount((folded * 2 * BINS).long(), minlength=BINS)
