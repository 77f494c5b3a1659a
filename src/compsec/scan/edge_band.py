"""Wide edge band: too many weights in the outer parts of their intervals (a randomised adaptive attacker).

Attack signature.  An attacker who draws each weight's repair margin at random in ``[0, f]`` of its interval
(:func:`compsec.attack.adaptive_shrink.fraction_margins` with a seed) leaves neither an excess within 1 % of the
edges (:mod:`compsec.scan.edge_mass`) nor an emptied band: the weights the projection clamps are spread over
``[0, f]``.  They still pile up in the outer part of the intervals: on the corpus, the outer 25 % on each side
held 1.2-1.25x the density a benign tensor gives, the middle 50 % correspondingly less.

Statistic.  ``k`` non-pinned weights within ``band`` (default 25 %) of either edge, against the grid-aware null
``sum m_outer / m_interval`` (rounding-cell masses, :func:`compsec.scan.null.band_masses`), one-sided z-test.
Both sides together cancel a linear density slope across an interval; curvature does not cancel, so the decision
rests on the effect floor (``ScanConfig.min_band_ratio``: observed / expected share >= 1.1; benign tensors sit
within a few % of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.scan.null import MIN_VARIANCE, poisson_binomial_test
from compsec.scan.tally import WIDE_BAND, EdgeTally, exact_tally


@dataclass(frozen=True)
class EdgeBandResult:
    """Outer-band share observed and expected (grid-aware), their ratio and the excess p-value (None: too few)."""

    fraction: float
    expected_fraction: float
    ratio: float
    p_value: float | None


def edge_band_test(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, band: float = WIDE_BAND) -> EdgeBandResult:
    """Excess of weights within ``band`` of an edge of ``[lo, hi]`` (``w``, ``lo``, ``hi``: same shape and storage
    dtype; pinned and non-finite intervals ignored).  ``band`` in (0, 0.5)."""
    if not 0 < band < 0.5:
        raise ValueError(f"band={band} must be in (0, 0.5); 0.25 compares the outer halves with the middle half")
    keep = (hi > lo) & torch.isfinite(lo) & torch.isfinite(hi)
    return edge_band_result(exact_tally(w[keep], lo[keep], hi[keep], 0.01, band))


def edge_band_result(t: EdgeTally) -> EdgeBandResult:
    """The edge-band test from a tally (:mod:`compsec.scan.tally`) of one tensor."""
    if t.weights == 0:
        return EdgeBandResult(0.0, 0.0, 1.0, None)
    _, p_value = poisson_binomial_test(t.outer, t.outer_expected, t.outer_variance)
    return EdgeBandResult(t.outer / t.weights, t.outer_expected / t.weights, (t.outer + 0.5) / (t.outer_expected + 0.5),
                          p_value if t.outer_variance >= MIN_VARIANCE else None)


def explain_edge_band(r: EdgeBandResult, band: float = WIDE_BAND) -> str:
    """One line for a report."""
    return (f"{100 * r.fraction:.1f}% of weights lie in the outer {100 * band:g}% of their interval on either side "
            f"({100 * r.expected_fraction:.1f}% expected, {r.ratio:.2f}x): weights pushed outward, as by an attacker "
            "repairing inside randomly shrunk boxes")
