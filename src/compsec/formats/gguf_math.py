"""The float arithmetic of ggml's legacy block quantizers (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1), in pure torch.

Every function reproduces ``gguf.quants`` (numpy, bit-exact with ggml-quants.c) operation by operation in
float32, so results agree bit-for-bit.  Blocks are float32 tensors of shape ``(n_blocks, 32)``; per-block
parameters have shape ``(n_blocks, 1)``.

- Q8_0:  ``d = amax / 127``; ``q = roundf(x * (1/d))`` (round half away from zero), codes int8 in [-127, 127].
- Q4_0 / Q5_0 (``half`` = 8 / 16): ``M`` = the signed value of the first element of largest magnitude,
  ``d = M / -half``; ``q = min(trunc(x * (1/d) + (half + 0.5)), 2 * half - 1)``, codes in [0, 2 * half).
- Q4_1 / Q5_1 (``top`` = 15 / 31): ``d = (max - min) / top``; ``q = min(trunc((x - min) * (1/d) + 0.5), top)``.

``1/d`` is taken as 0 when ``d == 0``; when it overflows to inf (``|d| < 2**-128``) the products are inf/NaN,
which numpy casts to code 0 (x86), so every code of such a block is 0 (before clipping).  ``d`` (and ``m = min``) are stored as float16, but the codes are computed
with the float32 ``d``: a box must keep the float32 value, not only its float16 rounding.
"""

from __future__ import annotations

import torch


def reciprocal(d: torch.Tensor) -> torch.Tensor:
    """``np.where(d == 0, 0, 1 / d)`` in float32 (a true IEEE division, never an approximate reciprocal)."""
    inv = torch.div(torch.ones_like(d), d)
    return torch.where(d == 0, torch.zeros_like(d), inv)


def round_half_away(n: torch.Tensor) -> torch.Tensor:
    """gguf's ``np_roundf``: ``sign(n) * (floor(|n|) + floor(2 * (|n| - floor(|n|))))`` in float32."""
    a = n.abs()
    floored = torch.floor(a)
    return torch.sign(n) * (floored + torch.floor(2 * (a - floored)))


def finite_or_zero(t: torch.Tensor) -> torch.Tensor:
    """numpy's float -> int8/uint8 cast of inf/NaN (reached when ``1/d`` overflows for tiny ``d``) gives 0."""
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def first_argmax(values: torch.Tensor) -> torch.Tensor:
    """Index (shape ``(n_blocks, 1)``) of the first maximal element of each row, as numpy's ``argmax``."""
    return torch.argmax(values, dim=-1, keepdim=True)


def sym_params(blocks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Q8_0 block parameters: ``amax``, ``d = amax / 127`` and its reciprocal ``inv``."""
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    d = amax / 127
    return {"d": d, "inv": reciprocal(d), "amax": amax}


def sym_codes(x: torch.Tensor, p: dict[str, torch.Tensor], cast: bool = True) -> torch.Tensor:
    """Q8_0 codes of ``x`` (integral float32) under parameters ``p``; ``cast=False`` skips numpy's cast of
    inf/NaN to 0 (those only arise in blocks whose ``1/d`` overflows, which boxes pin whole)."""
    codes = round_half_away(x * p["inv"])
    return finite_or_zero(codes) if cast else codes


def signed_max_params(blocks: torch.Tensor, half: int) -> dict[str, torch.Tensor]:
    """Q4_0 / Q5_0 parameters: the signed first abs-max ``M``, its index, ``d = M / -half`` and ``inv``."""
    idx = first_argmax(blocks.abs())
    signed_max = torch.gather(blocks, -1, idx)
    d = signed_max / -half
    return {"d": d, "inv": reciprocal(d), "max": signed_max, "idx": idx}


def signed_max_codes(x: torch.Tensor, p: dict[str, torch.Tensor], half: int, cast: bool = True) -> torch.Tensor:
    """Q4_0 / Q5_0 codes: ``clip(trunc(x * inv + (half + 0.5)), 0, 2 * half - 1)`` (integral float32)."""
    shifted = torch.trunc(x * p["inv"] + torch.tensor(half + 0.5, dtype=torch.float32))
    return (finite_or_zero(shifted) if cast else shifted).clamp_(0, 2 * half - 1)


def min_max_params(blocks: torch.Tensor, top: int) -> dict[str, torch.Tensor]:
    """Q4_1 / Q5_1 parameters: ``min``, ``max`` (and their first indices), ``d = (max - min) / top``, ``inv``."""
    imin = first_argmax(-blocks)
    imax = first_argmax(blocks)
    lo, hi = torch.gather(blocks, -1, imin), torch.gather(blocks, -1, imax)
    d = (hi - lo) / top
    return {"d": d, "inv": reciprocal(d), "min": lo, "max": hi, "imin": imin, "imax": imax}


def min_max_codes(x: torch.Tensor, p: dict[str, torch.Tensor], top: int, cast: bool = True) -> torch.Tensor:
    """Q4_1 / Q5_1 codes: ``clip(trunc((x - min) * inv + 0.5), 0, top)`` (integral float32)."""
    shifted = torch.trunc((x - p["min"]) * p["inv"] + torch.tensor(0.5, dtype=torch.float32))
    return (finite_or_zero(shifted) if cast else shifted).clamp_(0, top)
