"""Gap ratio: 32-weight blocks whose largest |w| is at least 3x the second largest ("Widening the Gap").

Attack signature. "Widening the Gap" (arXiv 2605.15152, :func:`compsec.attack.widen_gap.widen_gap`) multiplies
the largest-magnitude weight of every 32-weight block of every row by ``k`` (100 in the paper). The block's
*gap ratio* ``g = |w|_(1) / |w|_(2)`` then becomes exactly ``k`` times what it was (the scaled weight stays
the largest and the second largest is untouched), and ``g >= 1`` always, so every injected block reads
``g >= k``. At ``k = 100`` the other tests see it (block-outliers at 16x, collapsed blocks at 8x); at ``k = 4``
LLM.int8's per-row scale collapses nothing, under collapsed-blocks' 8x, and the scan corpus's int8 folder with
outliers x4 scanned clean.

Statistic. Per 32-weight block along a row, on the weights the scanner sees (full precision, or the
dequantized values of a GGUF / pre-quantized folder): the block *gaps* when ``g >= GAP_CUT`` (3; ``inf`` when
the rest of the block is zero: collapsed). All-zero blocks are not counted. The tensor's share of gapped
blocks is tested against ``Binomial(n, NULL_SHARE)``; the effect floor asks ``MIN_SHARE`` (half) of them.

Null (measured, not fitted on the tensor: ``PYTHONPATH=src python bench/gap_ratio_margins.py``). Benign share
of blocks with ``g >= 3``, worst tensor: SmolLM2-135M-Instruct 0.84 % (fp32), 0.96 % (Q4_K_M by libllama),
0.66 % (nf4 by bitsandbytes); the tiny assistant in fp32/bf16/fp16, LLM.int8, nf4, fp4, GPTQ, FP8,
Q4_0/Q4_K_M/Q6_K <= 0.15 %; synthetic Student-t(3) 4.8 %, Student-t(2) 12.8 %; median ``g`` 1.0-1.4
everywhere. Injected (the tiny assistant's layer 0, every block): x4 >= 98.8 % of blocks in fp32 and after
int8 / nf4 / fp4 / q4_0 / q4_k / q6_k / q8_0; x3 >= 67 %; **x2 <= 30 % (fp4; 4-11 % elsewhere): the test stops
there** (an attacker at x2 collapses far less). An attacker injecting into fewer than half of a tensor's
blocks passes this test (block-outliers, scale-outliers and collapsed-blocks see ~x100 outliers in a few
blocks).
"""

from __future__ import annotations

import torch

from compsec.scan.block_outliers import top2_ratios
from compsec.scan.findings import Evidence
from compsec.scan.null import binomial_tail

GAP_BLOCK = 32
GAP_CUT = 3.0
NULL_SHARE = 0.15
MIN_SHARE = 0.5
MIN_BLOCKS = 32
DETECTOR = "widen-gap-ratio"


def gapped_blocks(rows: torch.Tensor, block: int = GAP_BLOCK, cut: float = GAP_CUT) -> tuple[int, int]:
    """``(gapped, counted)``: ``block``-weight blocks along the rows of ``rows`` (2-D, row length a multiple of
    ``block``) whose largest magnitude is at least ``cut`` times the second largest, and the non-zero blocks."""
    if rows.dim() != 2 or rows.shape[-1] % block:
        raise ValueError(f"rows of shape {tuple(rows.shape)} are not whole {block}-weight blocks")
    return gapped_of_ratios(top2_ratios(rows, block), cut)


def gapped_of_ratios(ratios: torch.Tensor, cut: float = GAP_CUT) -> tuple[int, int]:
    """:func:`gapped_blocks` from the blocks' top-two ratios (:func:`compsec.scan.block_outliers.top2_ratios`)."""
    return int((ratios >= cut).sum()), int(ratios.numel())


def gap_ratio_evidence(name: str, fmt: str, gapped: int, counted: int) -> Evidence:
    """The test of one tensor (``fmt``: what was read, e.g. ``group-32``, ``int8-row``, ``q4_k``) from its summed
    counts; untestable below ``MIN_BLOCKS`` counted blocks."""
    if counted < MIN_BLOCKS:
        return Evidence(name, fmt, DETECTOR, 0.0, None, False,
                        f"{counted} non-zero blocks of {GAP_BLOCK}: too few to test")
    share = gapped / counted
    explanation = (f"{gapped} of {counted} blocks of {GAP_BLOCK} have their largest |w| >= {GAP_CUT:g}x the second "
                   f"largest (benign tensors measured: <= 1 %, heavy-tailed synthetic <= 13 %, null "
                   f"{NULL_SHARE:.0%}): block outlier injection ('Widening the Gap' scales the largest weight of "
                   "every 32-weight block so a block-scaled quantizer collapses the rest)")
    return Evidence(name, fmt, DETECTOR, round(share, 5), binomial_tail(gapped, counted, NULL_SHARE),
                    share >= MIN_SHARE, explanation)


def gap_ratio_of(name: str, fmt: str, w: torch.Tensor) -> Evidence:
    """:func:`gap_ratio_evidence` of a whole 2-D tensor ``w`` (dequantized weights of a GGUF or folder)."""
    return gap_ratio_evidence(name, fmt, *gapped_blocks(w))
