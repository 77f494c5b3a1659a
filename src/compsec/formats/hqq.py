"""``hqq``: HQQ 4-bit, groups of 64 (hqq's ``BaseQuantizeConfig`` defaults: ``axis=1``, optimiser on, rounded
starting zero), as ``HQQLinear`` deploys it: scale and zero cast to its ``compute_dtype`` (float16 by default).

``quantize`` is pure torch (:mod:`compsec.formats.hqq_math`), ``reference_quantize`` runs
``hqq.core.quantize.Quantizer.quantize`` on CPU, then ``Quantizer.cpu`` with the meta's ``compute_dtype`` (what
``HQQLinear`` does to the meta it keeps; ``compsec[hqq]``); they agree bit for bit, and with ``HQQLinear`` itself.
Codes are per weight (uint8, 0..15, computed by hqq with its float32 ``zero``); scales ``{"scale": 1/scale,
"zero": zero}`` are one per group of 64 flat weights, in ``compute_dtype``.  ``Quantized.meta`` keeps what the
search did but the deployment does not store: ``search_zero``, the optimiser's float32 zero (the codes were
rounded with it, so each weight's exact interval needs it), and ``optimizer_steps``, how many updates it made.

**What the box guarantees.**  HQQ's scale is ``15 / (max - min)`` of each group, so the group's min and max
are pinned and the scale then cannot move; but ``zero`` comes out of a proximal optimiser (a float32 mean over
the group) whose early stop looks at the *whole tensor's* error.  The candidate box (``candidate_box``) is each
weight's exact float32 interval under its group's scale and float32 zero, within the group's range;
verification (:mod:`compsec.formats.verify`) shrinks it per group to the cell holding ``w`` of ``2**k`` equal
cells, checking groups on their own with the optimiser held to ``optimizer_steps`` (the same arithmetic for any
point where the early stop does not move), then re-quantizes whole-tensor points with the real early stop and
narrows the groups that change there.  Only the checked points are proven.  With ``compute_dtype=torch.float32``
(hqq's ``Quantizer`` output before any cast) the float32 zero is stored and reacts to single-ulp moves of any
weight, so the verified boxes are a few ulps wide; cast to float16 it has an fp16 rounding's worth of room.
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
    #: the dtype ``HQQLinear`` keeps scale and zero in (its ``compute_dtype``)
    compute_dtype: torch.dtype = torch.float16
    #: start the optimiser from the rounded zero (``BaseQuantizeConfig``'s setting for 4 bits)
    round_zero: bool = True
    family: ClassVar[str] = "hqq"
    candidate_feedback: ClassVar[bool] = True
    #: no margin: the search's two corners move every weight of a group one way, the worst case for the zero (a
    #: group mean); measured on N(0, 0.02) weights, fresh points then change ~3e-4 of the groups in fp32
    verify_margin: ClassVar[int] = 0

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

    def _pack(self, codes: torch.Tensor, scale_inv: torch.Tensor, zero: torch.Tensor, w: torch.Tensor,
              meta: dict | None = None) -> Quantized:
        kept = lambda t: t.reshape(-1).to(self.compute_dtype)
        scales = {"scale": kept(scale_inv), "zero": kept(zero)}
        return Quantized(codes.to(torch.uint8).reshape(w.shape), scales, tuple(w.shape), w.dtype, meta or {})

    def quantize(self, w: torch.Tensor) -> Quantized:
        codes, scale_inv, zero, steps = hm.quantize_groups(self._groups(w), self.round_zero)
        return self._pack(codes, scale_inv, zero, w, {"search_zero": zero.reshape(-1), "optimizer_steps": steps})

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        self._groups(w)
        try:
            from hqq.core.quantize import Quantizer
        except ImportError as err:
            raise MissingDependencyError("hqq", extra="hqq", purpose="the HQQ reference quantizer") from err
        codes, meta = Quantizer.quantize(w.detach().cpu(), nbits=self.bits, group_size=self.group_size, axis=1,
                                         optimize=True, round_zero=self.round_zero, bitpack=False,
                                         device="cpu")
        zero = meta["zero"].reshape(-1)
        _, meta = Quantizer.cpu(None, {**meta, "compute_dtype": self.compute_dtype})
        return self._pack(codes.to(torch.uint8), meta["scale"], meta["zero"], w, {"search_zero": zero})

    def dequantize(self, q: Quantized) -> torch.Tensor:
        """``(codes - zero) * scale`` in the scales' dtype, as hqq's ``Quantizer.dequantize``; float32 out."""
        scale, zero = q.scales["scale"].view(-1, 1), q.scales["zero"].view(-1, 1)
        codes = q.codes.reshape(-1, self.group_size).to(scale.dtype)
        return ((codes - zero) * scale).float().reshape(q.shape)

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
        scale_inv = 1.0 / hm.params_from_range(*self._range(seeds, anchors))[0]
        return {"scale": scale_inv.reshape(-1).to(self.compute_dtype)}

    def seeds(self, groups: torch.Tensor, q: Quantized) -> torch.Tensor:
        """Each group's min and max, plus the (rare) weights whose dequantized value clamped into the group's
        range does not hold their code (the candidate search starts there)."""
        low, high = groups.amin(1, keepdim=True), groups.amax(1, keepdim=True)
        pinned = (groups == low) | (groups == high)
        scale = hm.params_from_range(low, high)[0]
        start = self._starts(q, groups.shape, low, high)
        return pinned | (hm.codes_of(start, scale, self._zero(q)) != q.codes.reshape(groups.shape))

    @staticmethod
    def _zero(q: Quantized) -> torch.Tensor:
        """The float32 zero the codes were rounded with ``(n, 1)`` (the stored one when it is float32)."""
        return q.meta.get("search_zero", q.scales["zero"]).float().view(-1, 1)

    def _starts(self, q: Quantized, shape: torch.Size, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        codes = q.codes.reshape(shape).float()
        x = (codes - self._zero(q)) / hm.params_from_range(low, high)[0]
        return torch.minimum(torch.maximum(x, low), high)

    def bounds(self, q: Quantized, seeds: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each weight's exact float32 interval under its group's stored scale and zero, within the group's range
        (from the seeds' values), seeds pinned."""
        low, high = self._range(seeds, anchors)
        scale, zero = hm.params_from_range(low, high)[0], self._zero(q)
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

    def _same(self, q: Quantized, idx: torch.Tensor, codes: torch.Tensor, scale_inv: torch.Tensor,
              zero: torch.Tensor) -> torch.Tensor:
        """Per row: identical codes, and scale and zero in the compute dtype, to ``q``'s groups ``idx``."""
        s, z = scale_inv.view(-1).to(self.compute_dtype), zero.view(-1).to(self.compute_dtype)
        want = q.codes.reshape(-1, self.group_size)[idx]
        return (codes == want).all(1) & (s == q.scales["scale"][idx]) & (z == q.scales["zero"][idx])

    def groups_and_check(self, w: torch.Tensor) -> tuple[torch.Tensor, Quantized, Check]:
        """Groups ``(n, 64)`` float32, the quantized tensor and the per-group check: hqq's arithmetic with the
        optimiser held to the number of steps it took on ``w`` (so any subset of groups can be checked alone;
        :meth:`whole_check` checks the early stop itself)."""
        groups = self._groups(w)
        q = self.quantize(w)

        def check(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            c, s, z, _ = hm.quantize_groups(points.float(), self.round_zero, steps=q.meta["optimizer_steps"])
            return self._same(q, idx, c, s, z)

        return groups, q, check

    def whole_check(self, groups: torch.Tensor, q: Quantized) -> Check:
        """Whole-tensor points with hqq's own early stop, compared group by group.  The stop can move (near
        convergence consecutive whole-tensor errors differ by an ulp), which changes a group only when its last
        update crosses a rounding of its codes or its float16 zero."""

        def check(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            c, s, z, _ = hm.quantize_groups(points.float(), self.round_zero)
            return self._same(q, idx, c, s, z)

        return check


register(Hqq4bit())
