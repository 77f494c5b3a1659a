"""Box-edge mass: are too many weights pressed against the edges of their quantization intervals?

Attack signature.  The quantization-conditioned attack (Egashira et al. 2024) repairs a model with projected
gradient descent inside each weight's preimage interval ``[lo, hi]``; projection clamps many weights onto (or
within a hair of) ``lo``/``hi``.  A prototype found 20-33 % of weights within 1 % of an edge after repair, against
~2 % for benign weights.

Statistic (a *local contrast*, robust to the weight density).  For each non-pinned weight let the *edge band* be
the grid values within ``eps * (hi - lo)`` of either edge and the *adjacent band* those between ``eps`` and
``3 * eps`` of it.  Among weights in either band, count ``k`` in the edge band.  Under the null (a density smooth
on the scale of ``3 * eps`` of an interval, rounded to the storage grid — :mod:`compsec.scan.null`) weight ``i``
falls in the edge band with probability ``p_i = m_edge / (m_edge + m_adj)``, the rounding-cell masses of the
two bands' grid values; for a fine grid ``p_i = 1/3``, for a coarse bf16 grid it is whatever the grid gives.
Coarse grids: when the adjacent band holds no grid value (bf16 inside an 8-bit interval: 3-5 grid values in
all), weight ``i`` instead counts unconditionally, with ``p_i = m_edge / m_interval``; such intervals are only a
few grid steps wide, so the density is constant across them and the absolute null is accurate.  ``k`` (edge
weights among all trials) is compared with ``sum p_i`` (variance ``sum p_i (1 - p_i)``): one-sided z-test,
p-value from the normal tail.  Comparing with the
adjacent band rather than with the whole interval cancels the density to first order, which matters because a
10-million-weight tensor detects a 1 % error in any absolute null.

Effect size (``score``): the odds ratio ``[k / (n - k)] / [E / (n - E)]`` with ``E = sum p_i``; 1 for benign
weights, ~10+ for a PGD-repaired tensor.  The descriptive edge fraction (all weights within ``eps`` of an edge,
against its grid-aware expectation ``m_edge / m_interval``) goes into the explanation line.

Depletion (the adaptive attacker).  An attacker who repairs inside boxes shrunk by a fraction ``f`` of each interval
(:mod:`compsec.attack.adaptive_shrink`) leaves no excess at the edges but the opposite: a band ``[0, f)`` emptied
(the corpus measured 0.2-0.3x the benign density for ``f`` = 10 % and 20 %) and a spike at ``f``.  The same
counts give a lower-tail test: ``k_all`` weights in the edge band among all non-pinned weights against the absolute
grid-aware null ``sum m_edge / m_interval`` (z-score, normal tail).  The absolute null is only accurate to the
density's slope across an interval, so the effect floor (``ScanConfig.max_edge_ratio``, observed / expected <= 0.5)
carries the decision; ``depletion_p`` is None when the null's variance is below ``MIN_VARIANCE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.scan.null import MIN_VARIANCE, poisson_binomial_test
from compsec.scan.tally import EdgeTally, exact_tally


@dataclass(frozen=True)
class EdgeMassResult:
    """Outcome for one tensor and one format; ``p_value`` is None when too few weights were informative."""

    n_weights: int
    edge_fraction: float
    expected_edge_fraction: float
    band_count: int
    edge_count: int
    expected_edge_count: float
    z: float
    p_value: float | None
    odds_ratio: float
    edge_ratio: float = 1.0
    depletion_p: float | None = None


def edge_mass_test(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float = 0.01) -> EdgeMassResult:
    """Run the edge-mass test on weights ``w`` with preimage ``[lo, hi]`` (same shape, same storage dtype).

    Pinned (``lo == hi``) and non-finite intervals are ignored.  ``eps``: band width as a fraction of the interval
    (must be below 0.25 so the four bands do not overlap).
    """
    if not 0 < eps < 0.25:
        raise ValueError(f"eps={eps} must be in (0, 0.25); the default 0.01 means 'within 1 % of an edge'")
    if w.dtype != lo.dtype or w.shape != lo.shape:
        raise ValueError("w, lo and hi must share shape and storage dtype; pass fmt.preimage(w) of this very w")
    keep = (hi > lo) & torch.isfinite(lo) & torch.isfinite(hi)
    return edge_mass_result(exact_tally(w[keep], lo[keep], hi[keep], eps))


def edge_mass_result(t: EdgeTally) -> EdgeMassResult:
    """The edge-mass and edge-depletion tests from a tally (:mod:`compsec.scan.tally`) of one tensor."""
    z, p_value = poisson_binomial_test(t.edge_hits, t.edge_expected, t.edge_variance)
    # lower tail P(K <= k_all) as the upper tail of -K (same continuity correction)
    depletion_p = poisson_binomial_test(-t.edge_all, -t.edge_all_expected, t.edge_all_variance)[1]
    return EdgeMassResult(
        n_weights=t.weights,
        edge_fraction=t.edge_all / t.weights if t.weights else 0.0,
        expected_edge_fraction=t.edge_all_expected / t.weights if t.weights else 0.0,
        band_count=t.edge_trials, edge_count=t.edge_hits, expected_edge_count=t.edge_expected, z=z,
        p_value=p_value if t.edge_variance >= MIN_VARIANCE else None,
        odds_ratio=_odds_ratio(t.edge_hits, t.edge_trials, t.edge_expected),
        edge_ratio=(t.edge_all + 0.5) / (t.edge_all_expected + 0.5),
        depletion_p=depletion_p if t.edge_all_variance >= MIN_VARIANCE else None,
    )


def _odds_ratio(k: int, n: int, expected: float) -> float:
    """Observed over expected odds of the edge band, with a half-count added so empty cells stay finite."""
    observed = (k + 0.5) / (n - k + 0.5)
    null = (expected + 0.5) / (n - expected + 0.5)
    return observed / null


def explain_edge_depletion(r: EdgeMassResult, eps: float, storage: str) -> str:
    """One line for a report (the depletion test)."""
    return (f"only {100 * r.edge_fraction:.2f}% of weights lie within {100 * eps:g}% of an interval edge "
            f"({100 * r.expected_edge_fraction:.2f}% expected on the {storage} grid, {r.edge_ratio:.2f}x): weights "
            "kept away from the edges, as by an attacker repairing inside shrunk boxes")


def explain_edge_mass(r: EdgeMassResult, eps: float, storage: str) -> str:
    """One line for a report."""
    return (f"{100 * r.edge_fraction:.1f}% of weights lie within {100 * eps:g}% of an interval edge "
            f"({100 * r.expected_edge_fraction:.1f}% expected on the {storage} grid); edge:adjacent odds "
            f"{r.odds_ratio:.1f}x the null")
