"""Block outliers: blocks whose abs-max dwarfs the rest of the block (outlier injection).

Attack signature.  Outlier injection scales one weight per quantization block so far up that the block's scale
(its abs-max) makes every other weight of the block round to the zero code: the quantized model loses that
block's information while the full-precision model barely changes.  For a 4-bit absmax format the rest of a
block rounds to zero once the abs-max is >= 16x (q4_0) or ~25x (nf4) the second-largest magnitude.

Statistic.  Per block of ``block_size`` consecutive weights along a row: ``r = |w|_(1) / |w|_(2)``, the ratio of
the largest to the second-largest magnitude.  A block *exceeds* when ``r >= ratio_threshold`` (default 16).

Null model (fitted on what the attacker cannot move).  For weights with a power-law (Pareto) magnitude tail of
index ``alpha`` the top-two ratio satisfies ``P(r > x) = x^-alpha`` exactly, i.e. ``log r ~ Exponential(alpha)``; for
lighter (Gaussian, Laplace) tails ``log r`` has a lighter upper tail than the exponential of the same median, so
the exponential model is conservative.  ``alpha`` is estimated from the blocks BELOW the threshold only (the
median of ``log r`` truncated to ``[0, log threshold)``, :func:`truncated_tail_index`): an injected block that
collapses its block sits at or above the threshold and cannot move the estimate, whatever share of the blocks
carries one (the published "Widening the Gap" layout puts one in every block, which moved the old
whole-tensor median so far that the null expected most blocks to exceed and the test never fired).  The index
is then floored at ``ALPHA_FLOOR`` (known weight statistics: no benign tensor measured has a heavier tail), which
is the null when fewer than ``MIN_BLOCKS`` blocks are left below the threshold.  The per-block exceedance
probability is ``pi0 = threshold^-alpha`` and the count of exceeding blocks is tested against
``Binomial(n_blocks, pi0)``.  ``score`` is the fraction of blocks that exceed.

Floor.  ``ALPHA_FLOOR = 1.5`` (``pi0 = 16^-1.5 = 1.6 %``, so with the scanner's 10x effect floor at least 16 % of a
tensor's blocks must exceed when its own tail cannot be fitted).  Measured whole-tensor indices (blocks of 32 and
64): SmolLM2-135M-Instruct >= 2.69 (``embed_tokens``; 3.16 for its heaviest linear weight, largest natural ratio
13.4), the tiny assistant and its random / hardened / fine-tuned variants >= 4.7, Student-t(3) weights ~3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from compsec.scan.null import binomial_tail

RATIO_THRESHOLD = 16.0
MIN_BLOCKS = 32  # fewer blocks: no tail index worth the name, the tensor is untestable
ALPHA_FLOOR = 1.5  # no benign tensor measured has a heavier top-two tail (module docstring)
_MAX_ALPHA = 64.0


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


def truncated_tail_index(log_ratios: torch.Tensor, log_threshold: float) -> float:
    """Tail index ``alpha`` of ``log r ~ Exponential(alpha)`` from ``log_ratios`` all in ``[0, log_threshold)``.

    Matches the median: ``(1 - exp(-alpha m)) / (1 - exp(-alpha c)) = 1/2`` for sample median ``m`` and
    ``c = log_threshold``, solved by bisection (the left side grows with ``alpha``).  Returns 0 when ``m >= c/2``
    (as heavy as a uniform ``log r`` or heavier) and ``inf`` when ``m == 0`` (ties: a grid-derived tensor).
    """
    m, c = float(log_ratios.median()), log_threshold
    if m <= 0:
        return float("inf")
    if m >= c / 2:
        return 0.0
    lo, hi = 1e-9, _MAX_ALPHA / m
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if -math.expm1(-mid * m) / -math.expm1(-mid * c) < 0.5 else (lo, mid)
    return (lo + hi) / 2


def null_tail_index(ratios: torch.Tensor, ratio_threshold: float = RATIO_THRESHOLD) -> float:
    """The null's tail index: fitted on the blocks below ``ratio_threshold`` (:func:`truncated_tail_index`),
    floored at ``ALPHA_FLOOR``; the floor itself when fewer than ``MIN_BLOCKS`` blocks lie below; ``inf`` for a
    grid-derived tensor (more than half of the blocks below tie their top two)."""
    below = ratios[ratios < ratio_threshold].log()
    if below.numel() < MIN_BLOCKS:
        return ALPHA_FLOOR
    return max(truncated_tail_index(below, math.log(ratio_threshold)), ALPHA_FLOOR)


def block_outlier_result(ratios: torch.Tensor, block_size: int,
                         ratio_threshold: float = RATIO_THRESHOLD) -> BlockOutlierResult:
    """The test from the top-two ratios of every block of a tensor (:func:`top2_ratios`, chunks concatenated)."""
    if ratio_threshold <= 1:
        raise ValueError(f"ratio_threshold={ratio_threshold} must exceed 1 (16 flags 4-bit outlier injection)")
    n = int(ratios.numel())
    exceeding = int((ratios >= ratio_threshold).sum())
    alpha = null_tail_index(ratios, ratio_threshold) if n >= MIN_BLOCKS else float("nan")
    if math.isnan(alpha) or math.isinf(alpha):  # too few blocks, or a grid-derived tensor: no tail to fit
        return BlockOutlierResult(block_size, n, exceeding, alpha, float("nan"), None)
    pi0 = math.exp(-alpha * math.log(ratio_threshold))
    return BlockOutlierResult(block_size, n, exceeding, alpha, n * pi0, binomial_tail(exceeding, n, pi0))


def explain_block_outliers(r: BlockOutlierResult, ratio_threshold: float = RATIO_THRESHOLD) -> str:
    """One line for a report: what was counted, against which null, and what it does to a quantized model."""
    return (f"{r.exceeding} of {r.n_blocks} blocks of {r.block_size} have an abs-max >= {ratio_threshold:g}x the "
            f"second-largest weight ({r.expected_exceeding:.2g} expected from the tail of the blocks below "
            f"{ratio_threshold:g}x, index {r.tail_index:.1f}, floored at {ALPHA_FLOOR:g}): an outlier per block "
            "collapses the block under block-scaled quantization (the rest of the block rounds to zero; "
            "outlier injection)")
