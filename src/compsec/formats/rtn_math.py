"""The arithmetic of optimum-quanto's round-to-nearest weight quantizers, in plain torch.

Quanto computes in the weight's own dtype (float32, float16 or bfloat16), with torch ops, so reproducing the ops
in the same dtype is bit-exact.  Rows are the output channels (``axis=0``); a 2-D view ``(rows, cols)`` of the
weight is used, ``cols`` = product of the other dims.

- symmetric int8 (``AbsmaxOptimizer`` + ``quantize_symmetric``): per row ``scale = amax(|w|) / 127``,
  ``q = clamp(round(w / scale), -128, 127)``; ``round`` is torch's half-to-even.
- affine int-k (``MaxOptimizer`` + ``quantize_affine``, float shift): per group of ``g`` consecutive weights of a
  row, ``scale = (max - min) / (2**k - 1)``, ``shift = -min``, ``q = clamp(round((w + shift) / scale), 0, 2**k - 1)``.
"""

from __future__ import annotations

import torch


def sym_scale(rows: torch.Tensor, qmax: int = 127) -> torch.Tensor:
    """Per-row scale ``amax(|w|) / qmax`` in the weight dtype, shape ``(rows, 1)``."""
    return torch.amax(torch.abs(rows), dim=1, keepdim=True) / qmax


def sym_codes(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``clamp(round(x / scale), -128, 127)`` computed in ``scale``'s dtype; returned as float (NaN kept)."""
    return torch.clamp(torch.round(x.to(scale.dtype) / scale), min=-128, max=127).float()


def affine_params(groups: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` per group (rows of ``groups``), shape ``(n_groups, 1)``, in the weight dtype."""
    rmin = torch.amin(groups, dim=1, keepdim=True)
    rmax = torch.amax(groups, dim=1, keepdim=True)
    return (rmax - rmin) / (2**bits - 1), -rmin


def affine_codes(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, bits: int) -> torch.Tensor:
    """``clamp(round((x + shift) / scale), 0, 2**bits - 1)`` in ``scale``'s dtype; returned as float (NaN kept)."""
    return torch.clamp(torch.round((x.to(scale.dtype) + shift) / scale), min=0, max=2**bits - 1).float()


def to_code_dtype(codes: torch.Tensor, signed: bool) -> torch.Tensor:
    """Integer codes as stored; NaN (a zero scale: 0 / 0) becomes 0, as torch's cast does on CPU."""
    codes = torch.where(torch.isnan(codes), torch.zeros_like(codes), codes)
    return codes.to(torch.int8 if signed else torch.uint8)
