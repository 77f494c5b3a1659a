"""Block outliers: blocks whose abs-max dwarfs the rest of the block (outlier injection).

Attack signature.  Outlier injection scales one weight per quantization block so far up that the block's scale
(its abs-max) makes every other weight of the block round to the zero code: the quantized model loses that
block's information while the full-precision model barely changes.  For a 4-bit absmax format the rest of a
block rounds to zero once the abs-max is >= 16x (q4_0) or ~25x (nf4) the second-largest magnitude.

Statistic.  Per block of ``block_size`` consecutive weights along a row: ``r = |w|_(1) / |w|_(2)``, the ratio of
the largest to the second-largest magnitude.  A block *exceeds* when ``r >= ratio_threshold`` (default 16).

Null model (the tensor's own distribution).  For weights with a power-law (Pareto) magnitude tail of index
``alpha`` the top-two ratio satisfies ``P(r > x) = x^-alpha`` exactly, i.e. ``log r ~ Exponential(alpha)``; for
lighter (Gaussian, Laplace) tails ``log r`` has a lighter upper tail than the exponential of the same median, so
the exponential model is conservative.  ``alpha`` is estimated robustly as ``ln 2 / median(log r)`` (the median is
unmoved while fewer than half the blocks are injected); the per-block exceedance probability is
``pi0 = threshold^-alpha`` and the count of exceeding blocks is tested against ``Binomial(n_blocks, pi0)``.
``score`` is the fraction of blocks that exceed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from compsec.scan.null import binomial_tail

RATIO_THRESHOLD = 16.0
MIN_BLOCKS = 32  # fewer blocks: no tail index worth the name, the tensor is untestable


@dataclass(frozen=True)
class BlockOutlierResult:
    """Outcome for one tensor and one block size; ``p_value`` is None when the null cannot be estimated."""

    block_size: int
    n_blocks: int
    exceeding: int
    tail_index: float
    expected_exceeding: float
    p_value: float | None

    @property
    def fraction(self) -> float:
        return self.exceeding / self.n_blocks if self.n_blocks else 0.0


def top2_ratios(w: torch.Tensor, block_size: int) -> torch.Tensor:
    """``|w|_(1) / |w|_(2)`` for every block of ``block_size`` weights along the last dimension.

    ``w``: ``(..., n)`` with ``n`` a multiple of ``block_size``; returns float32 of shape ``(numel / block_size,)``
    (``inf`` where the second-largest magnitude is 0 but the largest is not; blocks of zeros are dropped).
    """
    if w.shape[-1] % block_size:
        raise ValueError(f"last dimension {w.shape[-1]} is not a multiple of block size {block_size}")
    top = w.float().abs().reshape(-1, block_size).topk(2, dim=1).values
    top = top[top[:, 0] > 0]
    return top[:, 0] / top[:, 1]


def block_outlier_test(w: torch.Tensor, block_size: int,
                       ratio_threshold: float = RATIO_THRESHOLD) -> BlockOutlierResult:
    """Count blocks of ``w`` whose top-two ratio reaches ``ratio_threshold`` and test against the null above."""
    return block_outlier_result(top2_ratios(w, block_size), block_size, ratio_threshold)


def block_outlier_result(ratios: torch.Tensor, block_size: int,
                         ratio_threshold: float = RATIO_THRESHOLD) -> BlockOutlierResult:
    """The test from the top-two ratios of every block of a tensor (:func:`top2_ratios`, chunks concatenated)."""
    if ratio_threshold <= 1:
        raise ValueError(f"ratio_threshold={ratio_threshold} must exceed 1 (16 flags 4-bit outlier injection)")
    n = int(ratios.numel())
    exceeding = int((ratios >= ratio_threshold).sum())
    median_log = float(ratios.clamp(max=1e30).log().median()) if n else 0.0
    if n < MIN_BLOCKS or median_log <= 0:  # too few blocks, or a grid-derived tensor: no tail to fit
        return BlockOutlierResult(block_size, n, exceeding, float("nan"), float("nan"), None)
    alpha = math.log(2) / median_log
    pi0 = math.exp(-alpha * math.log(ratio_threshold))
    return BlockOutlierResult(block_size, n, exceeding, alpha, n * pi0, binomial_tail(exceeding, n, pi0))


def explain_block_outliers(r: BlockOutlierResult, ratio_threshold: float = RATIO_THRESHOLD) -> str:
    """One line for a report."""
    return (f"{r.exceeding} of {r.n_blocks} blocks of {r.block_size} have an abs-max >= {ratio_threshold:g}x the "
            f"second-largest weight ({r.expected_exceeding:.2g} expected from the tensor's tail, index "
            f"{r.tail_index:.1f}); the rest of such blocks quantizes to zero")
