"""Clip block outliers: bring a block's abs-max back to a robust bound so the rest of the block keeps its codes.

Outlier injection (:mod:`compsec.attack.outlier`) scales one weight per quantization block until the block's
abs-max makes every other weight round to the zero code.  The scanner flags such blocks by the ratio of the
largest to the second-largest magnitude (:func:`compsec.scan.block_outliers.top2_ratios`, threshold 16; natural
blocks of Gaussian or LLM weights sit near 1-2).

Rule, per block of the format's layout (bitsandbytes 4-bit: ``blocksize`` flat weights; GGUF: 32; LLM.int8():
one row): when ``top1 / top2 >= ratio_threshold``, the abs-max weight is set to
``sign * max(top2, robust_k * robust_sigma)`` where ``robust_sigma = median(|w|) / 0.6745`` over the block's
other weights (the Gaussian MAD scale).  Blocks below the threshold are untouched, so a clean model is left
bit-identical unless it has a natural 16x block outlier.  The result keeps the weight's sign and never grows.

Worked example: a 64-block with ``median |w| = 0.02``, ``top2 = 0.05`` and an injected ``2.0``: ratio 40 >= 16,
so the outlier becomes ``max(0.05, 4 * 0.02 / 0.6745) = 0.12`` and NF4 codes the others non-zero again.
"""

from __future__ import annotations

import torch

from compsec.errors import InputError

RATIO_THRESHOLD = 16.0
ROBUST_K = 4.0
GGUF_BLOCK = 32
MAD_TO_SIGMA = 0.6745


def block_size_for(fmt, shape: tuple[int, ...]) -> int | None:
    """Weights per scale block of ``fmt`` for a tensor of ``shape`` (flat, row-major); None when the tensor is
    not a whole number of blocks."""
    size = getattr(fmt, "blocksize", None) or getattr(fmt, "block_size", None)
    size = size or (GGUF_BLOCK if getattr(fmt, "family", "") == "gguf" else shape[-1])
    numel = 1
    for d in shape:
        numel *= d
    return size if numel and numel % size == 0 else None


@torch.no_grad()
def clip_block_outliers(w: torch.Tensor, block_size: int, ratio_threshold: float = RATIO_THRESHOLD,
                        robust_k: float = ROBUST_K) -> tuple[torch.Tensor, int]:
    """A copy of ``w`` with every outlier block's abs-max clipped (see module docstring), and how many blocks.

    ``w``: any shape with ``numel`` a multiple of ``block_size``; the copy has ``w``'s shape and dtype.
    """
    if ratio_threshold <= 1 or robust_k <= 0:
        raise InputError(f"ratio_threshold={ratio_threshold} must exceed 1 and robust_k={robust_k} be > 0")
    if w.numel() % block_size:
        raise InputError(f"{w.numel()} weights are not a whole number of {block_size}-weight blocks")
    blocks = w.detach().float().reshape(-1, block_size).clone()
    magnitude = blocks.abs()
    top = magnitude.topk(2, dim=1)
    top1, top2, where = top.values[:, 0], top.values[:, 1], top.indices[:, :1]
    others = magnitude.scatter(1, where, float("nan"))
    robust = others.nanmedian(dim=1).values / MAD_TO_SIGMA
    flagged = (top1 > 0) & (top1 >= ratio_threshold * top2)
    bound = torch.maximum(top2, robust_k * robust).minimum(top1)
    original = blocks.gather(1, where).squeeze(1)
    clipped = torch.where(flagged, torch.sign(original) * bound, original)
    blocks.scatter_(1, where, clipped.unsqueeze(1))
    return blocks.reshape(w.shape).to(w.dtype), int(flagged.sum())


@torch.no_grad()
def clip_outliers_(params: dict[str, torch.nn.Parameter], names: list[str], formats: list,
                   ratio_threshold: float = RATIO_THRESHOLD, robust_k: float = ROBUST_K) -> dict[str, int]:
    """Clip each weight ``names`` in place for every format's block layout in turn; returns blocks clipped per
    tensor (summed over formats)."""
    if not formats:
        raise InputError("clipping needs the target formats' block layouts; pass e.g. --formats nf4,int8")
    counts = {}
    for name in names:
        p, total = params[name], 0
        for fmt in formats:
            size = block_size_for(fmt, tuple(p.shape)) if fmt.supports(tuple(p.shape)) else None
            if size is None or size < 2:
                continue
            new, n = clip_block_outliers(p.detach().cpu(), size, ratio_threshold, robust_k)
            if n:
                p.copy_(new.to(p.device))
            total += n
        counts[name] = total
    return counts
