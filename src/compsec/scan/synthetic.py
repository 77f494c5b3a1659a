"""Synthetic benign and tampered weight tensors, to measure the scanner's detection and false-alarm rates.

- :func:`benign` — iid Gaussian or Laplace weights in a storage dtype.
- :func:`pgd_repaired` — what projected-gradient repair inside the preimage leaves behind (Egashira et al. 2024):
  a fraction of the non-pinned weights moved to within ``eps`` of an edge of their interval, uniformly in the
  band (``u = 0`` is the clamp onto the edge itself).
- :func:`shrunk_repaired` — what an adaptive attacker repairing inside boxes shrunk by ``fraction`` of each interval
  leaves: weights within ``fraction`` of an edge clamped onto the shrunk edge (a share ``moved`` of them).
- :func:`outlier_injected` — a fraction of blocks whose abs-max is raised to ``factor`` x the block's
  second-largest magnitude (the rest of the block then quantizes to zero).
- :func:`grid_derived` — ``dequantize(quantize(w))`` stored back in ``w``'s dtype (a checkpoint converted back
  from a quantized one).
"""

from __future__ import annotations

import torch

from compsec.formats.base import Format
from compsec.scan.null import grid_ceil, grid_floor
from compsec.scan.scan_boxes import scan_box


def benign(shape: tuple[int, int], dist: str, dtype: torch.dtype, gen: torch.Generator,
           scale: float = 0.02) -> torch.Tensor:
    """iid ``"gaussian"`` or ``"laplace"`` weights with standard deviation ``scale``, rounded to ``dtype``."""
    if dist == "gaussian":
        w = torch.randn(shape, generator=gen)
    elif dist == "laplace":
        u = (torch.rand(shape, generator=gen) - 0.5).clamp(-0.4999999, 0.4999999)  # no log(0)
        w = -torch.sign(u) * torch.log1p(-2 * u.abs()) / 2**0.5
    else:
        raise ValueError(f"dist must be 'gaussian' or 'laplace', got {dist!r}")
    return (w * scale).to(dtype)


def pgd_repaired(w: torch.Tensor, fmt: Format, fraction: float, gen: torch.Generator,
                 eps: float = 0.01) -> torch.Tensor:
    """A copy of ``w`` (storage dtype) with ``fraction`` of its non-pinned weights moved within ``eps`` of an
    edge of ``fmt``'s scanning interval (:func:`compsec.scan.scan_boxes.scan_box`); for an exact format the result
    quantizes exactly like ``w``; for a K-quant only its codes under ``w``'s scales are kept (llama.cpp usually
    picks other scales for the result)."""
    box = scan_box(fmt, w)
    lo, hi = box.lo.double(), box.hi.double()
    chosen = (torch.rand(w.shape, generator=gen) < fraction) & (box.hi > box.lo)
    offset = torch.rand(w.shape, generator=gen, dtype=torch.float64) * eps * (hi - lo)
    upper = torch.rand(w.shape, generator=gen) < 0.5
    to_lo = grid_floor(lo + offset, w.dtype)
    to_hi = grid_ceil(hi - offset, w.dtype)
    moved = torch.where(upper, to_hi, to_lo)
    return torch.where(chosen, moved, w)


def shrunk_repaired(w: torch.Tensor, fmt: Format, fraction: float, gen: torch.Generator,
                    moved: float = 0.8) -> torch.Tensor:
    """A copy of ``w`` where ``moved`` of the non-pinned weights lying within ``fraction`` of an interval edge sit
    on the shrunk edge ``lo + fraction * (hi - lo)`` (or ``hi - ...``) of its scanning interval instead; codes are
    unchanged."""
    box = scan_box(fmt, w)
    lo, hi = box.lo.double(), box.hi.double()
    pos = (w.double() - lo) / (hi - lo)
    chosen = (torch.rand(w.shape, generator=gen) < moved) & (box.hi > box.lo)
    low_side, high_side = chosen & (pos < fraction), chosen & (pos > 1 - fraction)
    to_lo = grid_ceil(lo + fraction * (hi - lo), w.dtype)
    to_hi = grid_floor(hi - fraction * (hi - lo), w.dtype)
    return torch.where(low_side, to_lo, torch.where(high_side, to_hi, w))


def outlier_injected(w: torch.Tensor, block_size: int, fraction: float, gen: torch.Generator,
                     factor: float = 40.0) -> torch.Tensor:
    """A copy of ``w`` where ``fraction`` of the blocks (along rows) get their abs-max element set to
    ``factor`` x the block's second-largest magnitude (sign kept)."""
    blocks = w.float().reshape(-1, block_size).clone()
    top = blocks.abs().topk(2, dim=1)
    chosen = torch.rand(blocks.shape[0], generator=gen) < fraction
    rows = torch.nonzero(chosen).squeeze(1)
    cols = top.indices[rows, 0]
    sign = torch.sign(blocks[rows, cols])
    blocks[rows, cols] = sign * factor * top.values[rows, 1]
    return blocks.reshape(w.shape).to(w.dtype)


def grid_derived(w: torch.Tensor, fmt: Format) -> torch.Tensor:
    """``fmt.dequantize(fmt.quantize(w))`` in ``w``'s shape and dtype."""
    return fmt.dequantize(fmt.quantize(w)).reshape(w.shape).to(w.dtype)
