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

from compsec.formats.base import Box, Format, Quantized, check_storage
from compsec.formats.verify import Verified


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

    The format implements ``verified(w, storage) -> Verified`` over its groups and ``quantize``."""

    guarantee: ClassVar[str] = "verified"

    def verified(self, w: torch.Tensor, storage: torch.dtype | None = None) -> Verified:
        raise NotImplementedError

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
