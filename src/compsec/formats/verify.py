"""Compute, verify, shrink: boxes for quantizers whose scales come from a search over every weight of a group.

For K-quants (llama.cpp) and HQQ the stored scales are the outcome of an optimisation over all the weights of a
super-block / group, so no interval per weight can be *derived*: moving any weight moves the optimum a little,
and a little is enough to flip an fp16 rounding or a near-tied candidate.  A format therefore derives a
*candidate* box (each weight's interval under the group's stored scales, exact on the float32 grid) and hands it
to :func:`verify_and_shrink`, which checks it with the real library and shrinks it where it fails:

1. every group starts at level 0 (the candidate box); at level ``k`` its box is the *cell* of the candidate
   holding ``w`` when each weight's interval is cut into ``2**k`` equal cells (:mod:`compsec.formats.cells`:
   ``2**-k`` of the candidate's width, rounded inward to the storage dtype, ``w`` always inside; a function of
   the candidate, the level and one cell number per weight, which is what makes the box storable in a few bytes
   per weight); levels run through :data:`LEVELS`, then "pinned whole" (``lo = hi = w``);
2. a round builds ``2 + POINTS`` tensors in the storage dtype: the all-``lo`` corner, the all-``hi`` corner,
   ``POINTS // 2`` random corners (each element at ``lo`` or ``hi``) and ``POINTS // 2`` uniform random
   interior points, and re-quantizes them with the real library, in that order, each only on the groups all
   earlier points of the round kept (a group fails the round at its first failing point; coupled groups: the
   round stops at the first point where any group fails); an uncoupled group that already passed a round at its
   level skips the two corners (the same tensors again); a group passes the round when the library's stored
   bytes for it are identical for every one of those points, else it goes to the next level;
3. the search: a group *settles* at the first level where its two corners pass (a round of corners only;
   coupled groups bisect over the levels instead of climbing them: every step re-quantizes the whole tensor);
   then every group is tightened ``MARGIN`` more level(s) (4x narrower) and must pass ``CONFIRM`` consecutive
   full rounds there, going up a level at every failure.

Guarantee (exactly this, no more): the final box of every group passed ``CONFIRM`` consecutive rounds at its
final level, i.e. its ``lo`` corner, its ``hi`` corner and ``CONFIRM * POINTS`` random corners / interior
points, in the storage dtype.  Minimality, up to the search's resolution: a group settled at level
``LEVELS[i] > 0`` failed at a corner of its ``LEVELS[i - 1]`` box (``Verified.settled`` records ``LEVELS[i]``).
Other points are not proven: on random N(0, 0.02) weights (tests/formats/test_verified.py bounds it), 0.1-0.8 %
of K-quant super-blocks change under 16 fresh random points in fp32 storage, where K-quant scales react to
single-ulp moves, and 0-0.1 % in bf16, where the verified boxes are mostly zero-width.
With ``coupled=True`` (HQQ: its optimiser stops on a *whole-tensor* error), groups are not independent, so every
round re-quantizes the whole tensor (corners included) and a round only counts when *all* groups pass it.  Should that
not happen within ``MAX_ROUNDS`` rounds, every group is pinned (the box becomes ``w`` itself, trivially sound);
uncoupled groups still unsettled then are pinned alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from compsec.formats.base import round_toward
from compsec.formats.cells import cell_box, cell_of

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
    whole by verification), ``settled`` ``(n,)`` uint8 (the level where the search first passed a round, before
    the margin) and ``candidate_widths`` ``(n,)`` float64 (each group's summed candidate width)."""

    lo: torch.Tensor
    hi: torch.Tensor
    levels: torch.Tensor
    settled: torch.Tensor
    candidate_widths: torch.Tensor

    @property
    def candidate_width(self) -> float:
        return float(self.candidate_widths.sum())

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

    def width_ratios(self) -> torch.Tensor:
        """Per group, verified width over candidate width (float64 ``(n,)``; NaN where the candidate is a point):
        at most ``2**-level`` (cells are rounded inward), 0 for groups pinned whole."""
        width = (self.hi.double() - self.lo.double()).sum(1)
        return torch.where(self.candidate_widths > 0, width / self.candidate_widths, float("nan"))


def cell_levels(levels: torch.Tensor) -> torch.Tensor:
    """Levels ``(m,)`` as the cells' ``k`` ``(m, 1)`` int64 (0 for groups pinned whole: their box is ``w``)."""
    return torch.where(levels == PINNED_LEVEL, 0, levels.long()).unsqueeze(-1)


def shrink(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, levels: torch.Tensor, storage: torch.dtype,
           cells: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The level-``levels`` box (rows of ``(m, G)``) in ``storage``: the cell of the candidate holding ``w``
    (``cells``: the cell numbers when known, then ``w`` only matters in groups pinned whole)."""
    pinned = (levels == PINNED_LEVEL).unsqueeze(-1)
    k = cell_levels(levels)
    box_lo, box_hi = cell_of(w, lo, hi, k, storage) if cells is None else cell_box(lo, hi, k, cells, storage)
    ws = w.to(storage)
    return torch.where(pinned, ws, box_lo), torch.where(pinned, ws, box_hi)


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
    if coupled:
        step = bisect_levels(w, lo, hi, check, storage)
    else:
        settle(w, lo, hi, check, storage, step, coupled, seed, rounds=1, corners_only=True)
    settled = _levels(step).to(torch.uint8)
    step = torch.clamp(step + MARGIN, max=len(LEVELS))
    box_lo, box_hi = settle(w, lo, hi, check, storage, step, coupled, seed + 7919, rounds=CONFIRM)
    widths = (hi.double() - lo.double()).sum(1)
    return Verified(box_lo, box_hi, _levels(step).to(torch.uint8), settled, widths)


def bisect_levels(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, storage: torch.dtype,
                  ) -> torch.Tensor:
    """The search for coupled groups, by bisection over the level indices (each round re-quantizes the whole
    tensor at both corners): per group, the first index whose corners passed, its predecessor's having failed
    (groups already found sit at that index meanwhile)."""
    n = w.shape[0]
    failed_at = torch.full((n,), -1, dtype=torch.long)
    passed_at = torch.full((n,), len(LEVELS), dtype=torch.long)    # pinned whole always passes
    rows = torch.arange(n)
    while bool((open_ := passed_at - failed_at > 1).any()):
        trial = torch.where(open_, (failed_at + passed_at) // 2, passed_at)
        box_lo, box_hi = shrink(w, lo, hi, _levels(trial), storage)
        ok = check(box_lo, rows) & check(box_hi, rows)
        passed_at = torch.where(open_ & ok, trial, passed_at)
        failed_at = torch.where(open_ & ~ok, trial, failed_at)
    return passed_at


def _one_round(box_lo: torch.Tensor, box_hi: torch.Tensor, rows: torch.Tensor, check: Check,
               storage: torch.dtype, seed: int, coupled: bool, corners_only: bool,
               corners_done: torch.Tensor) -> torch.Tensor:
    """Which of ``rows`` pass one round: uncoupled groups stop being re-quantized at their first failure and
    skip the corners they passed at this level in an earlier round (``corners_done``: the same two tensors), a
    coupled round stops at the first point any group fails."""
    ok = torch.ones(rows.numel(), dtype=torch.bool)
    for i, point in enumerate([box_lo, box_hi] if corners_only else points(box_lo, box_hi, storage, seed)):
        if coupled:
            ok &= check(point, rows)
            if not bool(ok.all()):
                break
            continue
        live = (ok & ~corners_done).nonzero().flatten() if i < 2 else ok.nonzero().flatten()
        if live.numel() == 0:
            break
        ok[live] = check(point[live], rows[live])
    return ok


def settle(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, storage: torch.dtype,
           step: torch.Tensor, coupled: bool, seed: int, rounds: int = CONFIRM, corners_only: bool = False,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raise ``step`` (in place) until every group passes ``rounds`` consecutive rounds at its level; returns
    the boxes at the final ``step``."""
    n = w.shape[0]
    streak = torch.zeros(n, dtype=torch.long)
    box_lo, box_hi = shrink(w, lo, hi, _levels(step), storage)

    def move(rows: torch.Tensor) -> None:                   # a level up (or pinned) for ``rows``, boxes redone
        box_lo[rows], box_hi[rows] = shrink(w[rows], lo[rows], hi[rows], _levels(step[rows]), storage)

    for attempt in range(MAX_ROUNDS):
        todo = (streak < rounds).nonzero().flatten()
        if todo.numel() == 0 and not (coupled and int(streak.min()) == 0):
            return box_lo, box_hi
        rows = torch.arange(n) if coupled else todo
        ok = _one_round(box_lo[rows], box_hi[rows], rows, check, storage, seed + attempt, coupled, corners_only,
                        streak[rows] > 0)
        failed = rows[~ok]
        if coupled and failed.numel():
            streak.zero_()
        streak[rows[ok]] += 1
        streak[failed] = 0
        step[failed] = torch.clamp(step[failed] + 1, max=len(LEVELS))
        if failed.numel():
            move(failed)
    # not settled within the budget (coupled groups keep failing somewhere): pin what is unsettled, or
    # everything when coupled -- a box reduced to ``w`` itself needs no verification
    unsettled = torch.ones(n, dtype=torch.bool) if coupled else streak < rounds
    step[unsettled] = len(LEVELS)
    move(unsettled.nonzero().flatten())
    return box_lo, box_hi


def _levels(step: torch.Tensor) -> torch.Tensor:
    table = torch.tensor((*LEVELS, PINNED_LEVEL), dtype=torch.long)
    return table[step]
