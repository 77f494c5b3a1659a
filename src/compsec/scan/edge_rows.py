"""Edge mass row by row: a fingerprint confined to a few rows, which the tensor-wide test dilutes.

Attack signature.  The tensor-wide edge-mass test (:mod:`compsec.scan.edge_mass`) needs the edge:adjacent odds of
the whole tensor above ``ScanConfig.min_odds_ratio``: a fingerprint in 1 % of the rows (30 % of their weights
moved next to an edge) raises them by ~1.1x, under the floor, however many weights are examined.  In the rows
it occupies, the odds are ~10x.

Statistic.  Per row ``r``: ``k_r`` weights in the edge band among ``n_r`` trials (the same trials as the edge-mass
test: weights in the edge or adjacent band), against their summed edge probabilities ``E_r``
(:class:`compsec.scan.tally.EdgeTally.rows`).  The row's tail is binomial, ``P(K >= k_r)`` for
``K ~ Binomial(n_r, E_r / n_r)`` (the trials' probabilities are nearly equal, and a binomial with their mean
has the larger variance, so the tail is conservative).  The strongest row among those whose odds reach the
effect floor is reported, Bonferroni-corrected over the rows with at least ``MIN_TRIALS`` trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MIN_TRIALS = 20  # rows with fewer trials are not tested (no tail worth the name)


@dataclass(frozen=True)
class RowEdgeResult:
    """Strongest row: its index among the examined rows, counts, odds ratio and Bonferroni p (None: untestable)."""

    row: int
    hits: int
    trials: int
    expected: float
    odds_ratio: float
    rows_tested: int
    p_value: float | None


def row_edge_result(per_row: torch.Tensor, min_odds_ratio: float) -> RowEdgeResult:
    """The per-row test from ``per_row`` (``(rows, 3)``: hits, trials, expected; see the module docs)."""
    from scipy.special import bdtrc

    hits, trials, expected = per_row.double().unbind(1) if per_row.numel() else (torch.zeros(0),) * 3
    tested = trials >= MIN_TRIALS
    if not bool(tested.any()):
        return RowEdgeResult(-1, 0, 0, 0.0, 1.0, 0, None)
    odds = ((hits + 0.5) / (trials - hits + 0.5)) / ((expected + 0.5) / (trials - expected + 0.5))
    mean_p = (expected / trials.clamp(min=1)).clamp(0.0, 1.0)
    tails = torch.from_numpy(bdtrc((hits - 1).clamp(min=0).long().numpy(), trials.long().numpy(), mean_p.numpy()))
    tails = torch.where(tested & (hits > 0), tails, torch.ones_like(tails))
    strong = tested & (odds >= min_odds_ratio)
    best = int(torch.argmin(torch.where(strong, tails, 2.0) if bool(strong.any()) else tails))
    n_tested = int(tested.sum())
    return RowEdgeResult(best, int(hits[best]), int(trials[best]), float(expected[best]), float(odds[best]),
                         n_tested, min(1.0, float(tails[best]) * n_tested))


def explain_row_edge(r: RowEdgeResult) -> str:
    """One line for a report."""
    return (f"row {r.row}: {r.hits} of {r.trials} weights near an interval edge are within the edge band "
            f"({r.expected:.0f} expected, odds {r.odds_ratio:.1f}x; strongest of {r.rows_tested} rows): weights "
            "pressed against the edges in a few rows, as by a repair confined to them")
