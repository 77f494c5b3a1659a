"""Outlier injection: one huge weight per quantization block, so the rest of the block quantizes to zero.

A block-scaled format divides every weight of a block by the block's abs-max.  Scaling the abs-max element
of each block up by a large enough factor makes every other weight fall below half the smallest non-zero
level, so the deployed (quantized) tensor is almost all zeros while the full-precision model changes in one
weight per block.  This is the pattern the tamper scanner must catch (``compsec.scan.block_outliers``).

Blocks follow the format's layout: ``blocksize`` flat blocks (bitsandbytes 4-bit), 32-weight flat blocks
(GGUF), whole rows (LLM.int8()).  Asymmetric min/max formats (Q4_1, Q5_1) have no zero code and are refused.
"""

from __future__ import annotations

import torch

from compsec.errors import InputError

GGUF_BLOCK = 32
MAX_DOUBLINGS = 24


def block_size(fmt, shape: tuple[int, ...]) -> int:
    """Weights per scale block of ``fmt`` for a tensor of ``shape`` (flat, row-major)."""
    if getattr(fmt, "scheme", None) == "min_max":
        raise InputError(f"{fmt.name} has an offset (min/max) per block and no zero code; use nf4/int8/q4_0/q8_0")
    size = getattr(fmt, "blocksize", None) or (GGUF_BLOCK if fmt.family == "gguf" else shape[-1])
    numel = 1
    for d in shape:
        numel *= d
    if numel % size:
        raise InputError(f"tensor of shape {shape} is not a whole number of {size}-weight blocks of {fmt.name}")
    return size


def _others_zero(fmt, w: torch.Tensor, size: int, keep: torch.Tensor) -> torch.Tensor:
    """Per block: True when every weight except the outlier dequantizes to exactly zero."""
    deq = fmt.dequantize(fmt.quantize(w)).reshape(-1, size)
    return ((deq == 0) | keep).all(dim=1)


@torch.no_grad()
def inject_block_outliers(w: torch.Tensor, fmt, start_ratio: float = 8.0) -> tuple[torch.Tensor, float]:
    """A copy of ``w`` where each block's abs-max element is scaled so the rest of its block quantizes to 0.

    The outlier becomes ``sign * ratio * max|others|`` (never smaller in magnitude than it was); ``ratio``
    starts at ``start_ratio`` and doubles, block by block, until ``fmt`` rounds the others to zero.  Returns
    the new tensor (same dtype) and the largest ratio used.  Blocks that are all zero are left alone.
    """
    size = block_size(fmt, tuple(w.shape))
    blocks = w.detach().float().reshape(-1, size).clone()
    where = blocks.abs().argmax(dim=1, keepdim=True)
    keep = torch.zeros_like(blocks, dtype=torch.bool).scatter_(1, where, True)
    others = blocks.abs().masked_fill(keep, 0).amax(dim=1, keepdim=True)
    original = blocks.gather(1, where)
    sign = torch.where(original < 0, -1.0, 1.0)
    ratio = torch.full_like(others, start_ratio)
    for _ in range(MAX_DOUBLINGS):
        value = sign * torch.maximum(ratio * others, original.abs())
        blocks.scatter_(1, where, value)
        candidate = blocks.reshape(w.shape).to(w.dtype)
        done = _others_zero(fmt, candidate, size, keep.reshape(-1, size)) | (others.squeeze(1) == 0)
        if bool(done.all()):
            return candidate, float(ratio.max())
        ratio = torch.where(done.unsqueeze(1), ratio, ratio * 2)
    raise InputError(f"{fmt.name}: could not zero the blocks with outliers up to {float(ratio.max()):.3g}x")


def inject_outliers(model, names: list[str], fmt) -> dict:
    """Apply :func:`inject_block_outliers` to the weights ``names`` of ``model`` in place.

    Returns ``{"tensors": n, "blocks": n, "max_ratio": r}``.
    """
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise InputError(f"the model has no weight {missing[0]!r}; pick names from the architecture table")
    blocks, max_ratio = 0, 0.0
    with torch.no_grad():
        for name in names:
            p = params[name]
            new, ratio = inject_block_outliers(p.detach().cpu(), fmt)
            p.copy_(new.to(p.device))
            blocks += p.numel() // block_size(fmt, tuple(p.shape))
            max_ratio = max(max_ratio, ratio)
    return {"tensors": len(names), "blocks": blocks, "max_ratio": max_ratio}


def zero_code_fraction(w: torch.Tensor, fmt) -> float:
    """Fraction of weights that the REAL library quantizes to a zero value (dequantized exactly 0)."""
    deq = fmt.dequantize(fmt.reference_quantize(w.detach().cpu()))
    return float((deq == 0).float().mean())
