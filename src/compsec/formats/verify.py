"""Compute, verify, shrink: boxes for quantizers whose scales come from a search over every weight of a group.

For K-quants (llama.cpp) and HQQ the stored scales are the outcome of an optimisation over all the weights of a
super-block / group, so no interval per weight can be *derived*: moving any weight moves the optimum a little,
and a little is enough to flip an fp16 rounding or a near-tied candidate.  A format therefore derives a
*candidate* box (each weight's interval under the group's stored scales, exact on the float32 grid) and hands it
to :func:`verify_and_shrink`, which checks it with the real library and shrinks it where it fails:

1. a group (K-quant super-block, HQQ group) is cut into ``U`` *level units* (K-quant sub-blocks: each has its
   own 6-8-bit scales, so most tolerate far wider boxes than the one whose scale sets the fp16 ``d``; HQQ: the
   whole group); at level ``k`` a unit's box is the *cell* of the candidate holding ``w`` when each weight's
   interval is cut into ``2**k`` equal cells (:mod:`compsec.formats.cells`: ``2**-k`` of the candidate's width,
   rounded inward to the storage dtype, ``w`` always inside; a function of the candidate, the level and one
   cell number per weight, which is what makes the box storable in a few bits per weight); levels run through
   :data:`LEVELS` (0 = the candidate, then every integer to 24), then "pinned whole" (``lo = hi = w``);
2. the search, per unit, by bisection over the levels: a level passes when the group's all-``lo`` and
   all-``hi`` corners re-quantize to the original bytes with the group's other units pinned at ``w``;
   ``Verified.settled`` records the first passing level, the one below it having failed (or 0);
3. every unit then goes ``margin`` levels further (``2**margin`` narrower; :data:`MARGIN` by default, each
   format picks its own) and every group must pass ``CONFIRM`` consecutive *rounds* with all its units at
   their levels; at a failure the group's units that fail *on their own* at the failing point (that unit's
   part of it, ``w`` elsewhere) go up a level, or all of them when none does.  A round builds ``2 + POINTS``
   tensors in the storage dtype: the all-``lo`` corner, the all-``hi`` corner, ``POINTS // 2`` random corners
   (each element at ``lo`` or ``hi``) and ``POINTS // 2`` uniform random interior points, and re-quantizes
   them with the real library in that order, each only on the groups all earlier points of the round kept (a
   group that passed a round at its levels skips the two corners in the next: the same tensors again).

Guarantee (exactly this, no more): the final box of every group passed ``CONFIRM`` consecutive rounds at its
final levels, i.e. its ``lo`` corner, its ``hi`` corner and ``CONFIRM * POINTS`` random corners / interior
points, in the storage dtype (for coupled groups, see below, with the coupling held fixed, plus the whole-tensor
rounds).  Minimality, up to the search's resolution: a unit settled at level ``k > 0`` failed at a corner of its
level ``k - 1`` box.  Other points are not proven: on random N(0, 0.02) weights (tests/formats/test_verified.py
bounds it at 5 %), a fresh random point of the box changes 0.1-0.36 % of the K-quant super-blocks and ~0.01 % of
HQQ's groups in fp32 storage, where K-quant scales and HQQ's zero react to single-ulp moves.

Coupled groups (HQQ: its optimiser stops at the first step where the *whole tensor's* error stops improving) are
verified group by group with the optimiser held to the original number of steps (then every group depends on its
own weights only); then rounds of whole-tensor points are re-quantized with the real early stop (``whole``) and
the groups that change there go up a level and are settled again, until a round (the ``WHOLE_ROUNDS``-th or
later) changes nothing; groups still changing in the ``WHOLE_MAX``-th are pinned whole, and then any group whose
whole-tensor corners still change.  Groups still unsettled after ``MAX_ROUNDS`` rounds are pinned whole too (the
box becomes ``w``, trivially sound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from compsec.formats.base import round_toward
from compsec.formats.cells import cell_box, cell_of

LEVELS = tuple(range(25))
PINNED_LEVEL = 255
POINTS = 4
CONFIRM = 16
MARGIN = 3
MAX_ROUNDS = 400
#: rounds of whole-tensor points for formats whose groups are coupled (HQQ): at least, and at most
WHOLE_ROUNDS = 2
WHOLE_MAX = 6
#: rows of ``(m, G)`` verification points built at once while settling level units (bounds the memory)
CHUNK_ROWS = 1 << 15

#: ``check(points, rows)``: re-quantize ``points`` (``(m, G)``, storage dtype) standing for the groups ``rows``
#: (``(m,)`` int64) and say which of them reproduce the original stored bytes, ``(m,)`` bool.
Check = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Verified:
    """A verified box over groups ``(n, G)`` cut into ``U`` level units of ``G // U`` weights, with what it took:
    ``levels`` ``(n, U)`` uint8 (``255``: pinned whole), ``settled`` ``(n, U)`` uint8 (the level the search found,
    before the margin) and ``candidate_widths`` ``(n, U)`` float64 (each unit's summed candidate width)."""

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
        """Fraction of level units whose candidate box had to shrink (or be pinned)."""
        return float((self.levels > 0).float().mean()) if self.levels.numel() else 0.0

    @property
    def pinned_fraction(self) -> float:
        """Fraction of level units pinned whole by verification."""
        return float((self.levels == PINNED_LEVEL).float().mean()) if self.levels.numel() else 0.0

    @property
    def relative_width(self) -> float:
        """Summed width of the verified box over that of the candidate (1.0: nothing shrank)."""
        width = float((self.hi.double() - self.lo.double()).sum())
        return width / self.candidate_width if self.candidate_width > 0 else 1.0

    def width_ratios(self) -> torch.Tensor:
        """Per level unit, verified width over candidate width (float64 ``(n, U)``; NaN where the candidate is a
        point): at most ``2**-level`` (cells are rounded inward), 0 for units pinned whole."""
        n, units = self.levels.shape
        width = (self.hi.double() - self.lo.double()).reshape(n, units, -1).sum(-1)
        return torch.where(self.candidate_widths > 0, width / self.candidate_widths, float("nan"))


def element_levels(levels: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit levels ``(m, U)`` as per-weight ``(k, pinned)`` ``(m, width)``: the cells' int64 ``k`` (0 where
    pinned whole: the box is ``w``) and whether the weight's unit is pinned whole."""
    repeat = width // max(levels.shape[-1], 1)
    pinned = (levels == PINNED_LEVEL).repeat_interleave(repeat, dim=-1)
    k = torch.where(levels == PINNED_LEVEL, 0, levels.long()).repeat_interleave(repeat, dim=-1)
    return k, pinned


def shrink(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, levels: torch.Tensor, storage: torch.dtype,
           cells: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The box at unit levels ``levels`` ``(m, U)`` of rows ``(m, G)`` in ``storage``: the cell of the candidate
    holding ``w`` (``cells``: the cell numbers when known, then ``w`` only matters in units pinned whole)."""
    k, pinned = element_levels(levels, w.shape[-1])
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
                      seed: int = 0, units: int = 1, margin: int = MARGIN, whole: Check | None = None,
                      rounds: int = CONFIRM) -> Verified:
    """Verified box of groups ``w`` ``(n, G)`` (representable in ``storage``) from candidate float32 ``lo``/``hi``,
    one level per unit of ``G // units`` consecutive weights, ``margin`` levels below where the search settled,
    ``rounds`` consecutive confirmation rounds; ``whole``: a check of whole-tensor points with the library's own
    coupling (see the module docs).

    Deterministic in ``(w, lo, hi, seed, units, margin, rounds)``; see the module docs for the procedure and the
    guarantee."""
    n, width = w.shape
    if units < 1 or width % units:
        raise ValueError(f"{units} level units do not divide groups of {width} weights")
    step = bisect_units(w, lo, hi, check, storage, units)
    settled = _levels(step).to(torch.uint8)
    step = torch.clamp(step + margin, max=len(LEVELS))
    box_lo, box_hi = settle(w, lo, hi, check, storage, step, seed + 7919, rounds=rounds)
    if whole is not None:
        confirm_whole(w, lo, hi, check, whole, storage, step, box_lo, box_hi, seed + 104729, rounds)
    widths = (hi.double() - lo.double()).reshape(n, units, -1).sum(-1)
    return Verified(box_lo, box_hi, _levels(step).to(torch.uint8), settled, widths)


def bisect_units(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, storage: torch.dtype,
                 units: int) -> torch.Tensor:
    """The search for independent groups: per level unit, by bisection over the level indices, the first index
    whose two corners pass while the group's other units are pinned at ``w``, its predecessor's having failed
    (``(n, units)`` indices; ``len(LEVELS)``: pinned whole, which always passes)."""
    n = w.shape[0]
    failed_at = torch.full((n, units), -1, dtype=torch.long)
    passed_at = torch.full((n, units), len(LEVELS), dtype=torch.long)
    while bool((open_ := passed_at - failed_at > 1).any()):
        pairs = open_.nonzero()
        for chunk in pairs.split(max(CHUNK_ROWS, 1)):
            rows, unit = chunk[:, 0], chunk[:, 1]
            trial = (failed_at[rows, unit] + passed_at[rows, unit]) // 2
            box_lo, box_hi = _unit_boxes(w, lo, hi, rows, unit, units, _levels(trial), storage)
            ok = check(box_lo, rows)
            if bool(ok.any()):
                ok[ok.clone()] = check(box_hi[ok], rows[ok])
            passed_at[rows[ok], unit[ok]] = trial[ok]
            failed_at[rows[~ok], unit[~ok]] = trial[~ok]
    return passed_at


def _unit_cols(unit: torch.Tensor, size: int) -> torch.Tensor:
    """Column indices ``(m, size)`` of unit ``unit`` (per row) in groups of units of ``size`` weights."""
    return (unit * size).unsqueeze(1) + torch.arange(size)


def _with_unit(w: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
               storage: torch.dtype) -> torch.Tensor:
    """Rows ``rows`` of ``w`` in ``storage`` with columns ``cols`` (per row) replaced by ``values``."""
    return w[rows].to(storage).scatter_(1, cols, values)


def _unit_boxes(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, rows: torch.Tensor, unit: torch.Tensor,
                units: int, level: torch.Tensor, storage: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``rows`` of ``w`` in ``storage`` with only unit ``unit`` (per row) replaced by its box at ``level``:
    the cells are computed on that unit's weights alone."""
    cols = _unit_cols(unit, w.shape[1] // units)
    pick = lambda t: t[rows.unsqueeze(1), cols]
    cell_lo, cell_hi = shrink(pick(w), pick(lo), pick(hi), level.unsqueeze(1), storage)
    return _with_unit(w, rows, cols, cell_lo, storage), _with_unit(w, rows, cols, cell_hi, storage)


def _one_round(box_lo: torch.Tensor, box_hi: torch.Tensor, rows: torch.Tensor, check: Check,
               storage: torch.dtype, seed: int, corners_done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``rows`` pass one round (each group re-quantized until its first failure; groups whose boxes
    already passed the two corners, ``corners_done``, skip those same two tensors), and for those that fail, the
    point they failed at (their rows of it)."""
    ok = torch.ones(rows.numel(), dtype=torch.bool)
    failed_at = box_lo.clone()
    for i, point in enumerate(points(box_lo, box_hi, storage, seed)):
        live = (ok & ~corners_done).nonzero().flatten() if i < 2 else ok.nonzero().flatten()
        if live.numel() == 0:
            if i < 2:
                continue
            break
        ok[live] = check(point[live], rows[live])
        lost = live[~ok[live]]
        failed_at[lost] = point[lost]
    return ok, failed_at


def _blame(w: torch.Tensor, failed_at: torch.Tensor, rows: torch.Tensor, check: Check, units: int,
           storage: torch.dtype) -> torch.Tensor:
    """``(m, units)`` bool: which units of each failing group ``rows`` fail on their own, i.e. the failing point
    on that unit and ``w`` elsewhere; a group none of whose units fails alone blames them all."""
    m = rows.numel()
    row = torch.arange(m).repeat_interleave(units)
    cols = _unit_cols(torch.arange(units).repeat(m), w.shape[1] // units)
    probe = _with_unit(w, rows[row], cols, failed_at[row.unsqueeze(1), cols], storage)
    alone = ~check(probe, rows[row]).view(m, units)
    return torch.where(alone.any(1, keepdim=True), alone, True)


def settle(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, storage: torch.dtype,
           step: torch.Tensor, seed: int, rounds: int = CONFIRM) -> tuple[torch.Tensor, torch.Tensor]:
    """Raise ``step`` ``(n, U)`` (in place) until every group has passed ``rounds`` consecutive rounds at its
    levels; returns the boxes at the final ``step``.  A failing group goes up a level in the units that fail on
    their own at the point it failed (:func:`_blame`), or in all of them."""
    n, units = step.shape
    streak = torch.zeros(n, dtype=torch.long)
    box_lo, box_hi = shrink(w, lo, hi, _levels(step), storage)

    def move(rows: torch.Tensor) -> None:                   # a level up (or pinned) for ``rows``, boxes redone
        box_lo[rows], box_hi[rows] = shrink(w[rows], lo[rows], hi[rows], _levels(step[rows]), storage)

    for attempt in range(MAX_ROUNDS):
        rows = (streak < rounds).nonzero().flatten()
        if rows.numel() == 0:
            return box_lo, box_hi
        ok, failed_at = _one_round(box_lo[rows], box_hi[rows], rows, check, storage, seed + attempt, streak[rows] > 0)
        failed = rows[~ok]
        streak[rows[ok]] += 1
        streak[failed] = 0
        if failed.numel():
            raise_ = (_blame(w, failed_at[~ok], failed, check, units, storage) if units > 1
                      else torch.ones(failed.numel(), units, dtype=torch.bool))
            step[failed] = torch.clamp(step[failed] + raise_.long(), max=len(LEVELS))
            move(failed)
    # not settled within the budget: pin what is unsettled -- a box reduced to ``w`` itself needs no verification
    unsettled = streak < rounds
    step[unsettled] = len(LEVELS)
    move(unsettled.nonzero().flatten())
    return box_lo, box_hi


def confirm_whole(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, check: Check, whole: Check,
                  storage: torch.dtype, step: torch.Tensor, box_lo: torch.Tensor, box_hi: torch.Tensor,
                  seed: int, rounds: int = CONFIRM) -> None:
    """Rounds of whole-tensor points checked by ``whole`` (the library's own coupling, e.g. HQQ's early stop on
    the whole tensor's error): the groups that change go up a level in every unit and are settled again with
    ``check``; at least ``WHOLE_ROUNDS`` rounds, then until one changes nothing, at most ``WHOLE_MAX`` (groups
    that changed in the last one are pinned whole, then any whose whole-tensor corners still change).  Updates
    ``step``, ``box_lo`` and ``box_hi`` in place."""
    rows = torch.arange(w.shape[0])

    def changed_at(tensors: list[torch.Tensor]) -> torch.Tensor:
        changed = torch.zeros(rows.numel(), dtype=torch.bool)
        for point in tensors:
            changed |= ~whole(point, rows)
        return changed.nonzero().flatten()

    def pin(again: torch.Tensor) -> None:
        step[again] = len(LEVELS)
        box_lo[again], box_hi[again] = shrink(w[again], lo[again], hi[again], _levels(step[again]), storage)

    for r in range(WHOLE_MAX):
        again = changed_at(points(box_lo, box_hi, storage, seed + r))
        if again.numel() == 0:
            if r + 1 >= WHOLE_ROUNDS:
                return
            continue
        if r + 1 == WHOLE_MAX:
            pin(again)
            break
        sub_step = torch.clamp(step[again] + 1, max=len(LEVELS))
        sub_lo, sub_hi = settle(w[again], lo[again], hi[again], lambda p, i, a=again: check(p, a[i]), storage, sub_step,
                                seed + 7 * (r + 1), rounds)
        step[again], box_lo[again], box_hi[again] = sub_step, sub_lo, sub_hi
    # groups were pinned in the last round: the two corners must still hold for the others (pin until they do;
    # when only pinned groups change, the coupling moved: pin all, the tensor is then ``w`` itself)
    while (again := changed_at([box_lo, box_hi])).numel():
        open_ = again[(step[again] != len(LEVELS)).any(1)]
        pin(open_ if open_.numel() else rows)


def _levels(step: torch.Tensor) -> torch.Tensor:
    table = torch.tensor((*LEVELS, PINNED_LEVEL), dtype=torch.long)
    return table[step]
