"""Compute, verify, shrink: boxes for quantizers whose scales come from a search over every weight of a group.

For K-quants (llama.cpp) and HQQ the stored scales are the outcome of an optimisation over all the weights of a
super-block / group, so no interval per weight can be *derived*: moving any weight moves the optimum a little,
and a little is enough to flip an fp16 rounding or a near-tied candidate.  A format therefore derives a
*candidate* box (each weight's interval under the group's stored scales, exact on the float32 grid) and hands it
to :func:`verify_and_shrink`, which checks it with the real library and shrinks it where it fails:

1. every group starts at level 0 (the candidate box); at level ``k`` its box is the candidate shrunk towards the
   weights by ``2**-k`` (``lo_k = w - (w - lo) * 2**-k``, likewise ``hi``; then rounded inward to the storage
   dtype, so ``w`` always stays inside); levels run through :data:`LEVELS`, then "pinned whole" (``lo = hi = w``);
2. a round builds ``2 + POINTS`` tensors in the storage dtype: the all-``lo`` corner, the all-``hi`` corner,
   ``POINTS // 2`` random corners (each element at ``lo`` or ``hi``) and ``POINTS // 2`` uniform random
   interior points, and re-quantizes each with the real library; a group passes the round when the library's
   stored bytes for it are identical for every one of those points, else it goes to the next level;
3. a group settles once it passes ``CONFIRM`` consecutive rounds (fresh random points each round); then every
   group is tightened ``MARGIN`` more level(s) (4x narrower) and settled again the same way.

Guarantee (exactly this, no more): the final box of every group passed ``CONFIRM`` consecutive rounds at its
final level, i.e. its ``lo`` corner, its ``hi`` corner and ``CONFIRM * POINTS`` random corners / interior
points, in the storage dtype.  Other points are not proven: on random weights (tests/formats/test_verified.py,
bench/bench_formats.py) a few per mille of super-blocks change under fresh random points in fp32 storage, where
K-quant scales react to single-ulp moves; none did in bf16, where the verified boxes are mostly zero-width.
With ``coupled=True`` (HQQ: its optimiser stops on a *whole-tensor* error), groups are not independent, so every
round re-checks every group and a round only counts when *all* groups pass it.  Should that not happen within
``MAX_ROUNDS`` rounds, every group is pinned (the box becomes ``w`` itself, trivially sound); uncoupled groups
still unsettled then are pinned alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from compsec.formats.base import round_toward

LEVELS = (0, 4, 8, 10, 12, 14, 16, 18, 20, 22, 24)
PINNED_LEVEL = 255
POINTS = 4
CONFIRM = 2
MARGIN = 1
MAX_ROUNDS = 400

#: ``check(points, rows)``: re-quantize ``points`` (``(m, G)``, storage dtype) standing for the groups ``rows``
#: (``(m,)`` int64) and say which of them reproduce the original stored bytes, ``(m,)`` bool.
Check = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Verified:
    """A verified box over groups ``(n, G)``, with what it took: ``levels`` ``(n,)`` uint8 (``255``: pinned
    whole by verification) and ``candidate_width`` (the summed float64 width of the unshrunk candidate)."""

    lo: torch.Tensor
    hi: torch.Tensor
    levels: torch.Tensor
    candidate_width: float

    @property
    def shrunk_fraction(self) -> float:
        """Fraction of groups whose candidate box had to shrink (or be pinned)."""
        return float((self.levels > 0).float().mean()) if self.levels.numel() else 0.0

    @property
    def pinned_fraction(self) -> float:
        """Fraction of groups pinned whole by verification."""
        return float((self.levels == PINNED_LEVEL).float().mean()) if self.levels.numel() else 0.0

    @property
    def relative_width(self) -> float:
        """Summed width of the verified box over that of the candidate (1.0: nothing shrank)."""
        width = float((self.hi.double() - self.lo.double()).sum())
        return width / self.candidate_width if self.candidate_width > 0 else 1.0


def shrink(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, levels: torch.Tensor, storage: torch.dtype,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The level-``levels`` box (rows of ``(m, G)``) in ``storage``: candidate shrunk towards ``w`` by ``2**-k``."""
    factor = torch.where(levels == PINNED_LEVEL, 0.0, torch.exp2(-levels.double())).unsqueeze(-1)
    w64 = w.double()
    lo_k = round_toward(w64 - (w64 - lo.double()) * factor, storage, up=True)
    hi_k = round_toward(w64 + (hi.double() - w64) * factor, storage, up=False)
    ws = w.to(storage)
    return torch.minimum(lo_k, ws), torch.maximum(hi_k, ws)


def points(lo: torch.Tensor, hi: torch.Tensor, storage: torch.dtype, seed: int) -> list[torch.Tensor]:
    """The ``2 + POINTS`` verification points of one round (see the module docs), in ``storage``."""
    gen = torch.Generator().manual_seed(seed)
    out = [lo, hi]
    for _ in range(POINTS // 2):
        out.append(torch.where(torch.rand(lo.shape, generator=gen) < 0.5, lo, hi))
    for _ in range(POINTS - POINTS // 2):
        u = torch.rand(lo.shape, generator=gen, dtype=torch.float64)
        inner = round_toward(lo.double() + u * (hi.double() - lo.double()), storage, up=False)
        out.append(torch.minimum(torch.maximum(inner, lo), hi))
    return out


def verify_and_shrink(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, storage: torch.dtype,
                      coupled: bool = False, seed: int = 0) -> Verified:
    """Verified box of groups ``w`` ``(n, G)`` (representable in ``storage``) from candidate float32 ``lo``/``hi``.

    Deterministic in ``(w, lo, hi, seed)``; see the module docs for the procedure and the guarantee."""
    n = w.shape[0]
    step = torch.zeros(n, dtype=torch.long)                  # index into LEVELS, len(LEVELS) = pinned
    settle(w, lo, hi, check, storage, step, coupled, seed)
    if MARGIN:
        step = torch.clamp(step + MARGIN, max=len(LEVELS))
        settle(w, lo, hi, check, storage, step, coupled, seed + 7919)
    levels = _levels(step)
    box_lo, box_hi = shrink(w, lo, hi, levels, storage)
    width = float((hi.double() - lo.double()).sum())
    return Verified(box_lo, box_hi, levels.to(torch.uint8), width)


def settle(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, storage: torch.dtype,
           step: torch.Tensor, coupled: bool, seed: int) -> None:
    """Raise ``step`` (in place) until every group passes ``CONFIRM`` consecutive rounds at its level."""
    n = w.shape[0]
    streak = torch.zeros(n, dtype=torch.long)
    for attempt in range(MAX_ROUNDS):
        todo = (streak < CONFIRM).nonzero().flatten()
        if todo.numel() == 0 and not (coupled and int(streak.min()) == 0):
            return
        rows = torch.arange(n) if coupled else todo
        box_lo, box_hi = shrink(w[rows], lo[rows], hi[rows], _levels(step[rows]), storage)
        ok = torch.ones(rows.numel(), dtype=torch.bool)
        for point in points(box_lo, box_hi, storage, seed + attempt):
            ok &= check(point, rows)
        failed = rows[~ok]
        if coupled and failed.numel():
            streak.zero_()
        streak[rows[ok]] += 1
        streak[failed] = 0
        step[failed] = torch.clamp(step[failed] + 1, max=len(LEVELS))
    # not settled within the budget (coupled groups keep failing somewhere): pin what is unsettled, or
    # everything when coupled -- a box reduced to ``w`` itself needs no verification
    unsettled = torch.ones(n, dtype=torch.bool) if coupled else streak < CONFIRM
    step[unsettled] = len(LEVELS)


def _levels(step: torch.Tensor) -> torch.Tensor:
    table = torch.tensor((*LEVELS, PINNED_LEVEL), dtype=torch.long)
    return table[step]
