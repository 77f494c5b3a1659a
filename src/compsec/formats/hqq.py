"""``hqq``: HQQ 4-bit, groups of 64 (hqq's ``BaseQuantizeConfig`` defaults: ``axis=1``, optimiser on).

``quantize`` is pure torch (:mod:`compsec.formats.hqq_math`), ``reference_quantize`` runs
``hqq.core.quantize.Quantizer.quantize`` on CPU (``compsec[hqq]``); they agree bit for bit.  Codes are per
weight (uint8, 0..15); scales ``{"scale": 1/scale, "zero": zero}`` are float32, one per group of 64 flat weights.

**What the box guarantees.**  HQQ's scale is ``15 / (max - min)`` of each group, so the group's min and max
are pinned and the scale then cannot move; but ``zero`` comes out of a proximal optimiser (a float32 mean over
the group) whose early stop looks at the *whole tensor's* error, so it depends on every weight.  The candidate
box (``candidate_box``) is each weight's exact float32 interval under its group's stored ``scale`` and
``zero``, within the group's range; verification (:mod:`compsec.formats.verify`, ``coupled=True``) shrinks it
per group to the cell holding ``w`` of ``2**k`` equal cells, or pins groups whole, until the corners pass,
then tightens 4x and passes 2 consecutive full rounds for *all* groups at once; a round is the all-``lo``
tensor, the all-``hi`` tensor, 2 random corners and 2 random interior points (storage dtype), each giving
identical codes, scales and zeros.  Only those points are proven.  In practice the zero-point reacts to
single-ulp moves of any weight: verified boxes are a few float32 ulps wide (width ~1e-8 of the candidate's,
about an eighth of the groups pinned whole) and empty in bf16/fp16, i.e. an HQQ-quantized model pins its
full-precision weights almost exactly.  The compact box costs ~1.6 (bf16) / ~1.95 (fp16) / ~3.5 (fp32) bytes
per weight: it stores the weights' exact values, which is all such a box is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.errors import MissingDependencyError
from compsec.formats import hqq_math as hm
from compsec.formats.base import Format, Quantized, require_finite
from compsec.formats.float_grid import furthest_true
from compsec.formats.registry import register
from compsec.formats.verified import VerifiedBoxes
from compsec.formats.verify import Check


@dataclass(frozen=True, eq=False)
class Hqq4bit(VerifiedBoxes, Format):
    """HQQ with 4-bit codes and ``group_size`` consecutive flat weights per group."""

    name: str = "hqq"
    group_size: int = 64
    bits: int = 4
    family: ClassVar[str] = "hqq"
    coupled: ClassVar[bool] = True

    def supports(self, shape: tuple[int, ...]) -> bool:
        numel = 1
        for d in shape:
            numel *= d
        return len(shape) >= 1 and numel > 0 and numel % self.group_size == 0

    def _groups(self, w: torch.Tensor) -> torch.Tensor:
        if not self.supports(tuple(w.shape)):
            raise ValueError(f"{self.name} needs a number of weights divisible by {self.group_size}, got shape "
                             f"{tuple(w.shape)}; pick another format for this tensor")
        require_finite(self.name, w, floats_only=True)
        return w.detach().float().reshape(-1, self.group_size)

    def _pack(self, codes: torch.Tensor, scale_inv: torch.Tensor, zero: torch.Tensor, w: torch.Tensor) -> Quantized:
        scales = {"scale": scale_inv.reshape(-1), "zero": zero.reshape(-1)}
        return Quantized(codes.to(torch.uint8).reshape(w.shape), scales, tuple(w.shape), w.dtype)

    def quantize(self, w: torch.Tensor) -> Quantized:
        return self._pack(*hm.quantize_groups(self._groups(w)), w)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        self._groups(w)
        try:
            from hqq.core.quantize import Quantizer
        except ImportError as err:
            raise MissingDependencyError("hqq", extra="hqq", purpose="the HQQ reference quantizer") from err
        codes, meta = Quantizer.quantize(w.detach().cpu(), nbits=self.bits, group_size=self.group_size, axis=1,
                                         optimize=True, bitpack=False, device="cpu")
        return self._pack(codes.to(torch.uint8), meta["scale"], meta["zero"], w)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        codes = q.codes.reshape(-1, self.group_size).float()
        out = (codes - q.scales["zero"].view(-1, 1)) * q.scales["scale"].view(-1, 1)
        return out.reshape(q.shape)

    derived_scales: ClassVar[tuple[str, ...]] = ("scale",)

    @property
    def code_bits(self) -> int:
        return self.bits

    def _range(self, seeds: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each group's min and max ``(n, 1)`` from the seeds' values."""
        return (torch.where(seeds, anchors, torch.inf).amin(1, keepdim=True),
                torch.where(seeds, anchors, -torch.inf).amax(1, keepdim=True))

    def restore_scales(self, q: Quantized, seeds: torch.Tensor, anchors: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stored ``1 / scale``: HQQ's scale is ``15 / (max - min)`` of the group, never optimised."""
        return {"scale": (1.0 / hm.params_from_range(*self._range(seeds, anchors))[0]).reshape(-1)}

    def seeds(self, groups: torch.Tensor, q: Quantized) -> torch.Tensor:
        """Each group's min and max, plus the (rare) weights whose dequantized value clamped into the group's
        range does not hold their code (the candidate search starts there)."""
        low, high = groups.amin(1, keepdim=True), groups.amax(1, keepdim=True)
        pinned = (groups == low) | (groups == high)
        scale = hm.params_from_range(low, high)[0]
        start = self._starts(q, groups.shape, low, high)
        return pinned | (hm.codes_of(start, scale, q.scales["zero"].view(-1, 1)) != q.codes.reshape(groups.shape))

    def _starts(self, q: Quantized, shape: torch.Size, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        codes = q.codes.reshape(shape).float()
        x = (codes - q.scales["zero"].view(-1, 1)) * q.scales["scale"].view(-1, 1)
        return torch.minimum(torch.maximum(x, low), high)

    def bounds(self, q: Quantized, seeds: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each weight's exact float32 interval under its group's stored scale and zero, within the group's range
        (from the seeds' values), seeds pinned."""
        low, high = self._range(seeds, anchors)
        scale, zero = hm.params_from_range(low, high)[0], q.scales["zero"].view(-1, 1)
        codes = q.codes.reshape(anchors.shape).float()
        flat_scale, flat_zero = scale.expand_as(anchors).reshape(-1), zero.expand_as(anchors).reshape(-1)
        flat_codes, flat_pinned = codes.reshape(-1), seeds.reshape(-1)

        def keeps(x: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:
            if sel is None:
                return (hm.codes_of(x, flat_scale, flat_zero) == flat_codes) | flat_pinned
            return (hm.codes_of(x, flat_scale[sel], flat_zero[sel]) == flat_codes[sel]) | flat_pinned[sel]

        s64, z64 = scale.double(), zero.double()
        guess_lo = torch.where(codes == 0, -torch.inf, ((codes - 0.5 - z64) / s64).float())
        guess_hi = torch.where(codes == hm.MAX_CODE, torch.inf, ((codes + 0.5 - z64) / s64).float())
        start = torch.where(seeds, anchors, self._starts(q, anchors.shape, low, high)).reshape(-1)
        lo = furthest_true(keeps, start, torch.where(seeds, anchors, low).reshape(-1), guess_lo.reshape(-1))
        hi = furthest_true(keeps, start, torch.where(seeds, anchors, high).reshape(-1), guess_hi.reshape(-1))
        lo, hi = lo.view(anchors.shape), hi.view(anchors.shape)
        return torch.where(seeds, anchors, lo), torch.where(seeds, anchors, hi)

    def groups_and_check(self, w: torch.Tensor) -> tuple[torch.Tensor, Quantized, Check]:
        """Groups ``(n, 64)`` float32, the quantized tensor and the check (identical codes, scales and zeros, every
        group at once: the optimiser's early stop couples them)."""
        groups = self._groups(w)
        q = self.quantize(w)
        codes = q.codes.reshape(groups.shape)

        def check(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            c, s, z = hm.quantize_groups(points.float())
            same = (c == codes).all(1) & (s.view(-1) == q.scales["scale"]) & (z.view(-1) == q.scales["zero"])
            return same[idx]

        return groups, q, check


register(Hqq4bit())
