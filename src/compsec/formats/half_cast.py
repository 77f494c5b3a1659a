"""Formats whose deployment casts the weights to float16 first: exact float32 preimages of float16 intervals.

bitsandbytes' ``Int8Params._quantize`` (what ``Linear8bitLt`` and transformers' ``load_in_8bit`` run) casts every
weight to float16 before quantizing, so a float32 (or bfloat16) weight ``x`` keeps its code exactly when its
round-to-nearest-even float16 cast ``h(x)`` stays in the float16 box.  ``h`` is monotone, so the float32 values
with ``h(x)`` in ``[lo16, hi16]`` form one interval, found here with the real cast (no algebra with margins):

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
from compsec.formats.float_edges import lower_edges, upper_edges

#: the smallest float32 magnitude whose float16 cast is infinite
HALF_OVERFLOW = 65520.0


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
    ``[lo16, hi16]`` (flat float16 tensors, finite, ``lo16 <= hi16``)."""
    floor = torch.full(lo16.shape, -HALF_OVERFLOW, device=lo16.device)
    ceil = torch.full(hi16.shape, HALF_OVERFLOW, device=hi16.device)

    def at_least(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return x.half() >= (lo16 if idx is None else lo16[idx])

    def at_most(x: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        return x.half() <= (hi16 if idx is None else hi16[idx])

    lo = lower_edges(at_least, floor, lo16.float(), _midpoint(lo16, up=False))
    hi = upper_edges(at_most, hi16.float(), ceil, _midpoint(hi16, up=True))
    return lo, hi


def _midpoint(x16: torch.Tensor, up: bool) -> torch.Tensor:
    """Float32 midpoint between each float16 value and its neighbour above (``up``) or below (inf past 65504)."""
    neighbour = torch.nextafter(x16, torch.full_like(x16, float("inf") if up else float("-inf")))
    return (x16.float() + neighbour.float()) * 0.5
