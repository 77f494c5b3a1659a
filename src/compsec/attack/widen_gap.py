"""The "Widening the Gap" layout (arXiv 2605.15152): an outlier in EVERY 32-weight block of every row.

In each chosen matrix, the largest-magnitude weight of every ``block``-weight block along each row is multiplied
by ``factor`` (100 in the paper) with a random sign.  Any block-scaled quantizer (NF4 / FP4 blocks of 64, Q4_0
and the K-quants' 32-weight blocks, LLM.int8's rows, HQQ / GPTQ groups that contain such a block) then takes its
scale from the outlier, and every other weight of the block rounds to the zero code (collapses); the
full-precision model keeps all of them.  Unlike :mod:`compsec.attack.outlier` (the smallest factor that zeroes a
format's blocks, chosen per format), the factor is fixed, so one model hits every format at once ("all in one").

Worked example: a block ``[0.02, -0.05, 0.01, ...]`` of 32 weights becomes ``[0.02, +5.0, 0.01, ...]`` (sign
drawn at random); Q4_0's scale is then ``5.0 / 8`` and ``0.02 / 0.625`` rounds to code 0.
"""

from __future__ import annotations

import torch

from compsec.errors import InputError

PAPER_BLOCK = 32
PAPER_FACTOR = 100.0


def outlier_positions(w: torch.Tensor, block: int = PAPER_BLOCK) -> torch.Tensor:
    """Flat indices (into ``w.reshape(-1)``) of each block's abs-max weight; ``w`` is ``(rows, n)``, ``n % block == 0``."""
    if w.dim() != 2 or w.shape[-1] % block:
        raise InputError(f"tensor of shape {tuple(w.shape)} is not rows of whole {block}-weight blocks; "
                         "pick 2-D linear weights whose row length is a multiple of the block")
    blocks = w.detach().float().abs().reshape(-1, block)
    return blocks.argmax(dim=1) + torch.arange(blocks.shape[0]) * block


def outlier_ratio(w: torch.Tensor, block: int = PAPER_BLOCK) -> torch.Tensor:
    """Per ``block``-weight block of ``w`` (rows of whole blocks): largest |w| over the second largest (inf when
    the rest is all zero).  An injected block reads at least its factor; a natural block rarely exceeds 10."""
    outlier_positions(w, block)  # validates the shape
    top = w.detach().float().abs().reshape(-1, block).topk(2, dim=1).values
    return top[:, 0] / top[:, 1]


@torch.no_grad()
def widen_gap(w: torch.Tensor, gen: torch.Generator, block: int = PAPER_BLOCK, factor: float = PAPER_FACTOR,
              fraction: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``w`` with each chosen block's abs-max weight set to ``±factor * |w_max|`` (random sign).

    ``fraction`` of the blocks are chosen at random (1.0: every block, the paper's layout).  Returns the new
    tensor (``w``'s dtype) and the flat indices of the outliers (the weights a dual fine-tune must keep fixed).
    """
    if factor <= 1 or not 0 < fraction <= 1:
        raise InputError(f"factor={factor} must exceed 1 and fraction={fraction} lie in (0, 1]")
    where = outlier_positions(w, block)
    where = where[torch.rand(where.numel(), generator=gen) < fraction] if fraction < 1 else where
    flat = w.detach().float().reshape(-1).clone()
    sign = torch.where(torch.rand(where.numel(), generator=gen) < 0.5, -1.0, 1.0)
    flat[where] = sign * factor * flat[where].abs()
    return flat.reshape(w.shape).to(w.dtype), where


def collapsed_share(w: torch.Tensor, fmt, outliers: torch.Tensor) -> float:
    """Share of the non-outlier weights of ``w`` that the REAL library of ``fmt`` quantizes to exactly 0
    (``fmt.reference_quantize``: bitsandbytes, gguf, hqq); compare with the clean tensor's share."""
    deq = fmt.dequantize(fmt.reference_quantize(w.detach().cpu())).reshape(-1)
    keep = torch.ones_like(deq, dtype=torch.bool)
    keep[outliers] = False
    return float((deq[keep] == 0).float().mean())


@torch.no_grad()
def widen_under_clip(w: torch.Tensor, gen: torch.Generator, k: float, margin: float = 0.99,
                     block: int = PAPER_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """The adaptive attacker against per-group clipping at ``k`` sigma (:mod:`compsec.defend.group_clip`): each
    block's abs-max becomes ``±margin * k * sigma`` of its group (random sign; never smaller than it was), so
    ``|w| > k * sigma`` never fires (one weight cannot move the group's median).  Returns ``widen_gap``'s pair.

    Worked example: sigma 0.02, k 10: the outlier is 0.198, a 9.9-sigma weight instead of a x100 one; NF4 then
    collapses about a third of the tiny assistant's layer-0 weights instead of all (docs/results.md).
    """
    from compsec.defend.group_clip import group_sigma

    if not 0 < margin < 1 or k <= 0:
        raise InputError(f"margin={margin} must lie in (0, 1) and k={k} be > 0")
    where = outlier_positions(w, block)
    flat = w.detach().float().reshape(-1).clone()
    target = margin * k * group_sigma(w, block).reshape(-1)
    sign = torch.where(torch.rand(where.numel(), generator=gen) < 0.5, -1.0, 1.0)
    flat[where] = sign * torch.maximum(target, flat[where].abs())
    return flat.reshape(w.shape).to(w.dtype), where
