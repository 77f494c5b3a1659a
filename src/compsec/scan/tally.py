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

:func:`edge_tally` is the torch reference; the scan runs the same three ways in one compiled pass per (chunk,
format), :func:`compsec.scan.tally_kernel.single_pass_tally` (same counts, ~10x faster).
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
    rows: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 3, dtype=torch.float64))
    """Per row (in order, chunks appended): edge-mass ``(hits, trials, expected)`` for the per-row test."""

    def add(self, other: EdgeTally) -> EdgeTally:
        """Add ``other``'s counts to these (in place; ``other``'s rows follow these rows) and return this tally."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            setattr(self, f.name, torch.cat([mine, theirs]) if f.name == "rows" else mine + theirs)
        return self


def edge_tally(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float) -> EdgeTally:
    """The tally of weights ``w`` in boxes ``[lo, hi]`` (same shape and storage dtype); pinned (``lo == hi``) and
    non-finite intervals are left out.  See the module docs for the three ways of counting."""
    n_rows = w.shape[0] if w.dim() == 2 else 1
    row = torch.arange(n_rows).repeat_interleave(w.numel() // max(n_rows, 1))
    keep = ((hi > lo) & torch.isfinite(lo) & torch.isfinite(hi)).reshape(-1)
    w, lo, hi, row = w.reshape(-1)[keep], lo.reshape(-1)[keep], hi.reshape(-1)[keep], row[keep]
    k_lo, k_hi = storage_key(lo, lo.dtype), storage_key(hi, hi.dtype)
    steps = k_hi - k_lo
    e_lo, e_hi = _exponent(k_lo - 1, lo.dtype), _exponent(k_hi + 1, lo.dtype)
    uniform = (e_lo == e_hi) & ((k_lo - 1 >= 0) == (k_hi + 1 >= 0))
    exact_steps = uniform & (steps <= UNIFORM_MAX_STEPS)
    mantissa, bias = _MANTISSA[lo.dtype]
    coarsest_ulp = torch.exp2((torch.maximum(e_lo, e_hi) - bias - mantissa).double())
    fine = ~exact_steps & ((hi.double() - lo.double()) >= FINE_STEPS * coarsest_ulp)
    rest = ~exact_steps & ~fine
    parts = [_uniform_tally(storage_key(w[exact_steps], w.dtype) - k_lo[exact_steps], steps[exact_steps], eps,
                            row[exact_steps], n_rows),
             _fine_tally(w[fine], lo[fine], hi[fine], eps, row[fine], n_rows),
             exact_tally(w[rest], lo[rest], hi[rest], eps, row=row[rest], n_rows=n_rows)]
    per_row = sum(part.rows for part in parts)
    out = parts[0].add(parts[1]).add(parts[2])
    out.rows = per_row
    return out


def _row_sums(row: torch.Tensor, trial: torch.Tensor, hit: torch.Tensor, p: torch.Tensor, n_rows: int,
              ) -> torch.Tensor:
    """``(n_rows, 3)`` float64 per-row ``(hits, trials, expected)``; ``trial``/``hit`` masks over the weights,
    ``p`` the edge probability of each trial (weights where ``trial`` holds, in order)."""
    at = row[trial]
    return torch.stack([torch.bincount(at[hit[trial]], minlength=n_rows).double(),
                        torch.bincount(at, minlength=n_rows).double(),
                        torch.bincount(at, weights=p.double(), minlength=n_rows)], dim=1)


def _exponent(key: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Biased exponent field of the values with ordered ``key`` (subnormals as 1: they share its ulp)."""
    magnitude = torch.where(key >= 0, key, -key - 1)
    return (magnitude >> _MANTISSA[dtype][0]).clamp(min=1)


@lru_cache(maxsize=8)
def _floors(eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``floor(x * n)`` for ``n = 0 .. UNIFORM_MAX_STEPS`` and ``x = eps, 3 eps, WIDE_BAND`` (int64)."""
    n = torch.arange(UNIFORM_MAX_STEPS + 1, dtype=torch.float64)
    return tuple(torch.floor(x * n).long() for x in (eps, 3 * eps, 3 * (WIDE_BAND / 3)))


def _uniform_tally(j: torch.Tensor, n: torch.Tensor, eps: float, row: torch.Tensor, n_rows: int) -> EdgeTally:
    """Uniform-grid intervals: ``j`` steps of each weight above ``lo``, ``n`` steps from ``lo`` to ``hi``."""
    if n.numel() == 0:
        return EdgeTally(rows=torch.zeros(n_rows, 3, dtype=torch.float64))
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
    trial = torch.where(local[n], cell >= 1, True)
    out.rows = _row_sums(row, trial, cell == 2, p_trial[n][trial], n_rows)
    return out


def _fine_tally(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float, row: torch.Tensor,
                n_rows: int) -> EdgeTally:
    """Fine-grid intervals: continuous masses, counts from the folded position ``min(p, 1 - p)``."""
    lo32 = lo.float()
    pos = (w.float() - lo32) / (hi.float() - lo32)
    near = torch.minimum(pos, 1 - pos).clamp(0.0, 0.5 - 1e-7)
    cell = (near <= eps).long() + (near <= 3 * eps).long()
    index = (cell * 2 + (near <= WIDE_BAND).long()) * BINS + (near * 2 * BINS).long()
    counts = torch.bincount(index, minlength=6 * BINS).view(3, 2, BINS)
    n, edge, banded = int(counts.sum()), int(counts[2].sum()), int(counts[1:].sum())
    outer, p_abs = int(counts[:, 1].sum()), 2 * eps
    trial = cell >= 1
    return EdgeTally(n, banded, edge, banded / 3, banded * 2 / 9, edge, n * p_abs, n * p_abs * (1 - p_abs),
                     outer, n * 2 * WIDE_BAND, n * 2 * WIDE_BAND * (1 - 2 * WIDE_BAND), counts.sum((0, 1)),
                     _row_sums(row, trial, cell == 2, torch.full((int(trial.sum()),), 1 / 3, dtype=torch.float64), n_rows))


def exact_tally(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float, band: float = WIDE_BAND,
                row: torch.Tensor | None = None, n_rows: int = 1) -> EdgeTally:
    """The tally from exact float64 cell masses per weight (any grid; ``w``, ``lo``, ``hi`` already filtered to
    non-pinned finite intervals and flat; ``band``: the edge-band test's outer share; ``row``: each weight's
    row among ``n_rows``, default all row 0)."""
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
                     float(p_out.sum()), float((p_out * (1 - p_out)).sum()), folded_counts(w, lo, hi),
                     _row_sums(torch.zeros_like(w, dtype=torch.int64) if row is None else row, trials, in_edge, p,
                               n_rows))


def folded_counts(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Per-bin counts (``BINS``, int64) of folded positions of the weights whose interval is fine enough."""
    width = hi.double() - lo.double()
    ulp = (torch.nextafter(w, torch.full_like(w, float("inf"))).double() - w.double()).abs()
    fine = (hi > lo) & torch.isfinite(width) & (width >= 2 * BINS * MIN_GRID_PER_BIN * ulp)
    pos = ((w.double() - lo.double()) / width)[fine]
    folded = torch.minimum(pos, 1 - pos).clamp(0.0, 0.5 - 1e-12)
    return torch.bincount((folded * 2 * BINS).long(), minlength=BINS)
