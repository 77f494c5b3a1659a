"""What the formats with *verified* boxes (K-quants, HQQ) share: the box methods and the compact box.

:class:`VerifiedBoxes` derives ``candidate``, ``preimage``, ``box_from_quantized`` and ``compact_box`` from three
format methods and marks the format ``guarantee = "verified"``, which the contract tests read:

- ``groups_and_check(w)`` -> the float32 groups ``(n, G)`` of ``w``, its :class:`~compsec.formats.base.Quantized`
  and the library check for :func:`compsec.formats.verify.verify_and_shrink`;
- ``seeds(groups, q)`` -> ``(n, G)`` bool: the weights the candidate box pins (the values seeding the scale
  search, e.g. each sub-block's min and max), whose values the compact box stores;
- ``bounds(q, seeds, anchors)`` -> the candidate ``(lo, hi)`` float32 ``(n, G)`` from the codes, the scales and
  the seeds' values (``anchors`` holds them at ``seeds``; its other entries must not matter).

The candidate is thus a function of codes, scales and seeds, and the verified box of that plus one level per
group and one cell number per weight (:mod:`compsec.formats.cells`), which is what
:class:`compsec.formats.verified_compact.VerifiedCompact` stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from compsec.formats.base import Box, Quantized, check_storage, snap_inward
from compsec.formats.verify import CONFIRM, MARGIN, Check, Verified, verify_and_shrink

if TYPE_CHECKING:
    from compsec.formats.verified_compact import VerifiedCompact


class VerifiedBoxes:
    """Mixin for formats whose box is computed, verified with the real library and shrunk (see the module docs)."""

    guarantee: ClassVar[str] = "verified"
    #: level units per group (one verified level each): K-quant sub-blocks, or the whole group
    level_units: ClassVar[int] = 1
    #: True when moving one weight also moves the search result its candidate interval is computed under (HQQ's
    #: zero, a float32 mean over the group): one step beyond an edge then changes the output for most weights
    candidate_feedback: ClassVar[bool] = False
    #: levels added below where the search settled, and consecutive confirmation rounds (see
    #: :mod:`compsec.formats.verify`)
    verify_margin: ClassVar[int] = MARGIN
    verify_rounds: ClassVar[int] = CONFIRM
    idempotent: ClassVar[bool] = False    # a search re-run on dequantized weights may settle elsewhere

    def groups_and_check(self, w: torch.Tensor) -> tuple[torch.Tensor, Quantized, Check]:
        raise NotImplementedError

    def seeds(self, groups: torch.Tensor, q: Quantized) -> torch.Tensor:
        raise NotImplementedError

    def whole_check(self, groups: torch.Tensor, q: Quantized) -> Check | None:
        """For formats whose groups are coupled: a check of whole-tensor points with the coupling in place
        (``groups_and_check``'s check then holds it fixed); None when groups are independent."""
        return None

    def bounds(self, q: Quantized, seeds: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def likely_seeds(self, q: Quantized, shape: torch.Size) -> torch.Tensor:
        """Where seeds probably are, ``(n, G)`` bool, from codes (and integer scales) alone: the compact box
        names seeds by their rank among these (a few bits) and any others by their flat position.  Default: each
        group's lowest and highest codes."""
        codes = q.codes.reshape(shape).long()
        return (codes == codes.amin(1, keepdim=True)) | (codes == codes.amax(1, keepdim=True))

    #: scales that ``restore_scales`` recomputes from the seeds (the compact box does not store them)
    derived_scales: ClassVar[tuple[str, ...]] = ()

    def restore_scales(self, q: Quantized, seeds: torch.Tensor, anchors: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ``derived_scales`` of ``q`` recomputed from the seeds' values (see ``bounds``)."""
        return {}

    def candidate(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Check]:
        """``(groups, lo, hi, check)``: float32 groups ``(n, G)``, their candidate box and the library check."""
        groups, q, check = self.groups_and_check(w)
        lo, hi = self.bounds(q, self.seeds(groups, q), groups)
        return groups, lo, hi, check

    def verify(self, w: torch.Tensor, storage: torch.dtype | None = None,
               ) -> tuple[Quantized, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Verified]:
        """Everything the box is made of: ``(q, seeds, groups in storage, candidate lo, hi, verified)``."""
        storage = storage or w.dtype
        check_storage(w, storage)
        groups, q, check = self.groups_and_check(w)
        seeds = self.seeds(groups, q)
        lo, hi = self.bounds(q, seeds, groups)
        ws = groups.to(storage)
        return q, seeds, ws, lo, hi, verify_and_shrink(ws, lo, hi, check, storage, units=self.level_units,
                                                         margin=self.verify_margin, whole=self.whole_check(groups, q),
                                                         rounds=self.verify_rounds)

    def verified(self, w: torch.Tensor, storage: torch.dtype | None = None) -> Verified:
        """The verified box of ``w`` over the format's groups, with its shrink statistics."""
        return self.verify(w, storage)[-1]

    def candidate_box(self, w: torch.Tensor, storage: torch.dtype | None = None) -> Box:
        """The unverified candidate (each weight's exact interval under its group's stored scales), in
        ``storage``: tight (one step beyond an unpinned edge changes the library's output), not sound."""
        storage = storage or w.dtype
        check_storage(w, storage)
        _, lo, hi, _ = self.candidate(w)
        return snap_inward(Box(lo.reshape(w.shape), hi.reshape(w.shape)), storage)

    def preimage(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> Box:
        v = self.verified(w, storage_dtype)
        return Box(v.lo.reshape(w.shape), v.hi.reshape(w.shape))

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        if not self.quantize(w).same_as(q):
            raise ValueError(f"{self.name}: these codes and scales do not come from these weights; pass the tensor "
                             "that was quantized")
        return self.preimage(w)

    def compact_box(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> VerifiedCompact:
        """Codes, scales, seeds, levels and cell numbers; ``.box()`` is bit-identical to ``preimage``."""
        from compsec.formats.verified_compact import VerifiedCompact

        return VerifiedCompact.build(self, w, storage_dtype)
