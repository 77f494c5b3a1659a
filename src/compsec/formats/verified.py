"""What the formats with *verified* boxes (K-quants, HQQ) share: the box methods and the compact stand-in.

:class:`VerifiedBoxes` derives ``preimage``, ``box_from_quantized`` and ``compact_box`` from a format's
``verified(w, storage)`` (:mod:`compsec.formats.verify`) and marks the format ``guarantee = "verified"``, which
the contract tests read.  The compact stand-in is the weights themselves, in the storage dtype: a verified box is shrunk towards the weights by a per-group factor found by trial
(:mod:`compsec.formats.verify`), so it is a function of the weights, not of codes and scales: no smaller
summary rebuilds it exactly.  :class:`RecomputedBox` keeps the weights (``storage`` itemsize bytes per
parameter: 2 for fp16/bf16, 4 for fp32, over the 2-byte budget of exact formats) and rebuilds the box by
recomputing it, which is deterministic (fixed verification seeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.formats.base import Box, Format, Quantized, check_storage, snap_inward
from compsec.formats.verify import Check, Verified, verify_and_shrink


@dataclass(frozen=True, eq=False)
class RecomputedBox:
    """Weights of one tensor in ``storage``; ``.box()`` is bit-identical to ``fmt.preimage(w, storage)``."""

    fmt: Format
    storage: torch.dtype
    weights: torch.Tensor

    @classmethod
    def build(cls, fmt: Format, w: torch.Tensor, storage: torch.dtype | None = None) -> RecomputedBox:
        storage = storage or w.dtype
        check_storage(w, storage)
        return cls(fmt, storage, w.detach().to(storage).clone())

    @property
    def numel(self) -> int:
        return self.weights.numel()

    @property
    def nbytes(self) -> int:
        return self.weights.numel() * self.weights.element_size()

    @property
    def bytes_per_param(self) -> float:
        return self.nbytes / max(self.numel, 1)

    def box(self) -> Box:
        """Recompute the verified box (same seeds, so the same box)."""
        return self.fmt.preimage(self.weights, self.storage)


class VerifiedBoxes:
    """Mixin for formats whose box is computed, verified with the real library and shrunk (see the module docs).

    The format implements ``quantize`` and ``candidate(w) -> (groups, lo, hi, check)``: its float32 groups
    ``(n, G)``, their candidate box (float32, same shape) and the library check for
    :func:`compsec.formats.verify.verify_and_shrink`; ``coupled`` says whether groups influence each other."""

    guarantee: ClassVar[str] = "verified"
    coupled: ClassVar[bool] = False
    idempotent: ClassVar[bool] = False    # a search re-run on dequantized weights may settle elsewhere

    def candidate(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Check]:
        raise NotImplementedError

    def verified(self, w: torch.Tensor, storage: torch.dtype | None = None) -> Verified:
        """The verified box of ``w`` over the format's groups, with its shrink statistics."""
        storage = storage or w.dtype
        check_storage(w, storage)
        groups, lo, hi, check = self.candidate(w)
        return verify_and_shrink(groups.to(storage), lo, hi, check, storage, coupled=self.coupled)

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

    def compact_box(self, w: torch.Tensor, storage_dtype: torch.dtype | None = None) -> RecomputedBox:
        return RecomputedBox.build(self, w, storage_dtype)
