"""Position spike: many weights clamped at one interior position of their intervals (an adaptive attacker).

Attack signature.  An attacker repairing inside boxes shrunk by a fixed fraction ``f`` of each interval clamps
every weight the projection stops onto ``lo + f * (hi - lo)`` or ``hi - f * (hi - lo)``: at the same *position*
``f`` (or ``1 - f``) of every interval.  On K-quants, whose benign edges are already depleted by llama.cpp's scale
search (so the edge-depletion test cannot run, :mod:`compsec.scan.scan_boxes`), this spike is what is left to
see: the corpus's adaptive q4_k attacker (f = 10 %) put 8x the neighbouring density into the two 0.5 %-wide
bins around 0.1.

Statistic (a local contrast, like :mod:`compsec.scan.edge_mass`).  Positions are folded to ``q = min(p, 1 - p)``
in ``[0, 0.5]`` and cut into ``BINS`` bins.  For each window of two adjacent bins ``(b, b + 1)`` (a spike may
straddle a bin edge), its count ``k`` is compared with the four bins ``b - 3, b - 2, b + 3, b + 4`` around it:
under a density smooth on the scale of 4 % of an interval (linear across the 8 bins) a weight among those six
bins falls in the window with probability 1/3.  Binomial tail per window, Bonferroni over windows; the windows
touching the first two bins are left to the edge-mass test.  Effect size: the window's density over the
neighbours', ``(k / 2) / (n / 4)``, floored by ``ScanConfig.min_spike_ratio`` (3: benign tensors of 4,096
weights reach 1.3-1.9x in fp32 by chance, up to 3.5x in fp16 and 7x in bf16 where few weights count, never
with a small p-value).

Storage grid.  A weight counts only where its interval holds at least ``MIN_GRID_PER_BIN`` representable values
per bin (else bins hold 0 or 1 grid values and the counts would spike by granularity): float32 always, float16
for most intervals, bfloat16 rarely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.scan.tally import BINS, MIN_GRID_PER_BIN, folded_counts  # noqa: F401  (re-exported)

MIN_WEIGHTS = 200  # fewer counted weights: untestable


@dataclass(frozen=True)
class SpikeResult:
    """Strongest window: its folded position (centre), density ratio and Bonferroni p-value (None: untestable)."""

    position: float
    ratio: float
    p_value: float | None
    counted: int


def position_spike_test(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, min_ratio: float = 3.0) -> SpikeResult:
    """The most significant two-bin window among those at least ``min_ratio`` times denser than their neighbours
    (else the most significant of all), see the module docs; ``w``, ``lo``, ``hi`` share shape and storage dtype."""
    return spike_result(folded_counts(w, lo, hi), min_ratio)


def spike_result(counts: torch.Tensor, min_ratio: float = 3.0) -> SpikeResult:
    """The position-spike test from the folded-position histogram ``counts`` (``BINS``, int64) of one tensor."""
    from scipy.special import bdtrc

    counted = int(counts.sum())
    starts = torch.arange(3, BINS - 4)
    window = counts[starts] + counts[starts + 1]
    around = counts[starts - 3] + counts[starts - 2] + counts[starts + 3] + counts[starts + 4]
    ratio = (window.double() / 2 + 0.5) / (around.double() / 4 + 0.5)
    tails = torch.from_numpy(bdtrc((window - 1).clamp(min=0).numpy(), (window + around).numpy(), 1 / 3))
    tails = torch.where(window > 0, tails, torch.ones_like(tails))
    strong = ratio >= min_ratio
    pool = torch.where(strong, tails, torch.full_like(tails, 2.0)) if bool(strong.any()) else tails
    best = int(torch.argmin(pool))
    p_value = min(1.0, float(tails[best]) * len(starts)) if counted >= MIN_WEIGHTS else None
    return SpikeResult((int(starts[best]) + 1) / (2 * BINS), float(ratio[best]), p_value, counted)


def explain_position_spike(r: SpikeResult) -> str:
    """One line for a report."""
    return (f"{r.ratio:.1f}x the neighbouring density of weights sits at {100 * r.position:.1f}% of their interval "
            f"from an edge: weights clamped at one interior position, as by an attacker repairing inside boxes "
            f"shrunk by a fixed fraction")
