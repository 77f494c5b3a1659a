"""Formats whose deployment casts the weights to float16 first: exact float32 preimages of float16 intervals.

bitsandbytes' ``Int8Params._quantize`` (what ``Linear8bitLt`` and transformers' ``load_in_8bit`` run) casts every
weight to float16 before quantizing, so a float32 (or bfloat16) weight ``x`` keeps its code exactly when its
round-to-nearest-even float16 cast ``h(x)`` stays in the float16 box.  ``h`` is monotone, so the float32 values
with ``h(x)`` in ``[lo16, hi16]`` form one interval, whose edges have a closed form without margins (checked
against the real cast for every finite float16 value in tests/formats/test_bnb.py):

- ties: halfway between two float16 neighbours rounds to the one with an even mantissa, so an edge is either the
  float32 midpoint itself or the float one ulp inside it (midpoints are exact in float32);
- subnormals: below ``2**-14`` float16 steps are ``2**-24``; the float32 values within ``2**-25`` of zero cast to
  ``±0`` (``2**-25`` itself ties to 0);
- overflow: from ``65520`` (halfway past ``65504``, tie to even) a float32 casts to ``inf``; weights that far out
  are refused (:func:`check_half_range`), the deployed layer would store garbage for their row.

Worked example: float16 ``1.0`` has neighbours ``1 - 2**-11`` and ``1 + 2**-10``; ``1.0`` is even, so the
float32 values casting to it are ``[1 - 2**-12, 1 + 2**-11]``, both midpoints included.
"""

from __future__ import annotations

import torch

from compsec.formats.base import round_toward

#: the smallest float32 magnitude whose float16 cast is infinite
HALF_OVERFLOW = 65520.0
#: where float16's grid would continue past 65504 (its midpoint with 65504 is HALF_OVERFLOW)
HALF_GRID_END = 65536.0


def check_half_range(name: str, w: torch.Tensor) -> None:
    """ValueError when some weight of ``w`` overflows float16 (``|w| >= 65520``), which the deployment casts to."""
    if w.numel() and float(w.detach().abs().max()) >= HALF_OVERFLOW:
        raise ValueError(f"{name} casts weights to float16 before quantizing (as bitsandbytes' Int8Params does), "
                         f"and some |weight| >= {HALF_OVERFLOW:g} overflows to inf there; rescale this layer or "
                         "keep it unquantized")


def half_interval(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[lo, hi]`` (float32) shrunk to its float16 values: ``(lo16, hi16)``, float16 tensors."""
    return round_toward(lo, torch.float16, up=True), round_toward(hi, torch.float16, up=False)


def preimage_of_half(lo16: torch.Tensor, hi16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` float32, elementwise: the smallest and largest float32 ``x`` whose float16 cast lies in
    ``[lo16, hi16]`` (float16 tensors, finite, ``lo16 <= hi16``).

    Closed form, exact: the edge is the float32 midpoint with the float16 neighbour outside (11-bit values, so
    their sum and half are exact in float32), kept when the tie rounds inward (the inner value's mantissa is
    even) and moved one float32 inward otherwise.  Past 65504 the neighbour is ``inf`` and the midpoint is
    taken as 65520, where the cast overflows (65504's mantissa is odd, so the tie goes out): moved inward."""
    return _edge(lo16, up=False), _edge(hi16, up=True)


def _edge(x16: torch.Tensor, up: bool) -> torch.Tensor:
    outward = float("inf") if up else float("-inf")
    neighbour = torch.nextafter(x16, torch.full_like(x16, outward)).float()
    neighbour = neighbour.clamp(-HALF_GRID_END, HALF_GRID_END)
    midpoint = (x16.float() + neighbour) * 0.5
    odd = (x16.view(torch.int16) & 1).bool()             # the mantissa's last bit: ties go to the even side
    inward = torch.nextafter(midpoint, torch.full_like(midpoint, -outward))
    return torch.where(odd, inward, midpoint)
