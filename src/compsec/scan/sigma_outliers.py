"""Sigma outliers: 32-weight blocks whose abs-max stands far above the block's robust scale (adaptive outlier
injection under per-group clipping).

Attack signature.  "Widening the Gap"'s clipping defence zeroes (or divides) every weight above ``k`` sigma of its
32-weight group, sigma = ``median|w| / 0.6745`` (:mod:`compsec.defend.group_clip`, k = 10).  The adaptive
attacker (:func:`compsec.attack.widen_gap.widen_under_clip`) puts each block's abs-max just under it, at
``0.99 k`` sigma: nothing is clipped, NF4 still collapses about a third of the matrix, and the largest weight is
then only ~5x the second largest, below the block-outlier test's 16x (measured: the attacked tiny assistant,
keyword 0 % in fp32 and 90 % under NF4, scanned clean).

Statistic.  Per 32-weight block along a row: ``s = max|w| / sigma`` with sigma the MAD scale of the block's
non-zero weights (pruned zeros would shrink it; blocks with fewer than half non-zero are not counted).  A block
*exceeds* when ``s >= SIGMA_THRESHOLD`` (8: an attacker at ``k = 10`` has ``s = 9.9``).

Null (known weight statistics, not fitted on the tensor).  Per-block exceedance at 8 sigma measured on benign
weights: at most 5.2 % of a tensor's blocks (SmolLM2-135M-Instruct, 210 linear tensors), 0.05 % (tiny
assistant); Student-t(3) weights 10.9 %.  The count is tested against ``Binomial(n, NULL_SHARE = 0.2)``
and the effect floor asks at least ``MIN_SHARE`` (half) of the blocks to exceed.  An attacker who injects in
fewer blocks, or below 8 sigma, passes; the collapse it buys shrinks with both (reported, not hidden).
"""

from __future__ import annotations

import torch

from compsec.scan.findings import Evidence
from compsec.scan.null import binomial_tail

SIGMA_BLOCK = 32
SIGMA_THRESHOLD = 8.0
NULL_SHARE = 0.2
MIN_SHARE = 0.5
MIN_BLOCKS = 32
MAD_TO_SIGMA = 0.6745
DETECTOR = "sigma-outliers"


def sigma_exceeding(rows: torch.Tensor, block: int = SIGMA_BLOCK,
                    threshold: float = SIGMA_THRESHOLD) -> tuple[int, int]:
    """``(exceeding, counted)`` 32-weight blocks of ``rows`` (2-D, row length a multiple of ``block``); blocks
    with fewer than half of their weights non-zero are not counted."""
    if rows.dim() != 2 or rows.shape[-1] % block:
        raise ValueError(f"rows of shape {tuple(rows.shape)} are not whole {block}-weight blocks")
    mags = rows.detach().float().abs().reshape(-1, block)
    nonzero = mags > 0
    counted = nonzero.sum(dim=1) >= block // 2
    sigma = torch.where(nonzero, mags, torch.nan).nanmedian(dim=1).values / MAD_TO_SIGMA
    exceeding = counted & (mags.max(dim=1).values >= threshold * sigma)
    return int(exceeding.sum()), int(counted.sum())


def sigma_outlier_evidence(name: str, exceeding: int, counted: int) -> Evidence:
    """The test of one tensor from its summed counts (untestable below ``MIN_BLOCKS`` counted blocks)."""
    if counted < MIN_BLOCKS:
        return Evidence(name, f"group-{SIGMA_BLOCK}", DETECTOR, 0.0, None, False,
                        f"{counted} blocks of {SIGMA_BLOCK} with enough non-zero weights: too few to test")
    share = exceeding / counted
    explanation = (f"{exceeding} of {counted} blocks of {SIGMA_BLOCK} have an abs-max >= {SIGMA_THRESHOLD:g} sigma "
                   f"of the block (median |w| / {MAD_TO_SIGMA}; benign tensors measured: <= 5.2 %, null "
                   f"{NULL_SHARE:.0%}): outliers kept just under per-group clipping still collapse the rest of "
                   "the block under 4-bit quantization (adaptive outlier injection)")
    return Evidence(name, f"group-{SIGMA_BLOCK}", DETECTOR, round(share, 5), binomial_tail(exceeding, counted, NULL_SHARE),
                    share >= MIN_SHARE, explanation)
