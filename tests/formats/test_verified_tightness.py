"""What stands in for tightness when a box is verified and shrunk (K-quants, HQQ), over every ``verified_fmt``.

An exact box is tight: one representable step beyond an unpinned edge changes the code.  A shrunk box cannot be
(its edges sit inside the region that keeps the code); the strongest honest analogues, tested here:

- the *candidate* box is tight (test_contract.py: ``test_box_is_tight_one_step_beyond_each_edge``);
- the shrink is minimal up to the search's resolution: a group whose level units are each one level wider than
  where the search settled them fails the library's check again at fresh points (most groups);
- each level unit's verified width is at most ``2**-level`` of its candidate width (0 when pinned whole), and the
  compact box rebuilds the box bit for bit, also on adversarial tensors.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compsec.formats import cells, verify
from compsec.formats.varbits import PackedInts, RiceInts, pack_ints, pack_varbits, unpack_varbits

from .conftest import MAX_EXAMPLES, STORAGE, random_weights, shapes_for
from .test_contract import _adversarial

FEW = settings(max_examples=max(3, MAX_EXAMPLES // 5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: fraction of shrunk groups whose one-level-wider box must fail again at fresh points (measured: 87-100 %)
REFAIL = 0.5


@pytest.mark.parametrize("storage", STORAGE, ids=str)
@FEW
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 0.05, 1.0, 40.0]))
def test_the_shrink_is_minimal_up_to_the_search_resolution(verified_fmt, storage, seed, scale):
    """Every level unit ends at least ``MARGIN`` levels below where its search settled; a group whose shrunk
    units are put back one level wider than that (its other units at their final levels) fails again."""
    fmt = verified_fmt
    w = random_weights(shapes_for(fmt, 1)[0], storage, seed=seed, scale=scale)
    groups, lo, hi, check = fmt.candidate(w)
    ws = groups.to(storage)
    v = verify.verify_and_shrink(ws, lo, hi, check, storage, units=fmt.level_units)
    settled, levels = v.settled.long(), v.levels.long()
    shrunk = (settled > 0) & (settled != verify.PINNED_LEVEL)
    floor = torch.clamp(settled + verify.MARGIN, max=verify.LEVELS[-1])
    assert bool((levels[shrunk] >= floor[shrunk]).all()), "a unit ended below its settled level plus the margin"
    if not bool(shrunk.any()):
        return
    rows = shrunk.any(1).nonzero().flatten()
    wider = torch.where(shrunk, settled - 1, levels)[rows]
    box_lo, box_hi = verify.shrink(ws[rows], lo[rows], hi[rows], wider, storage)
    failed = torch.zeros(rows.numel(), dtype=torch.bool)
    for round_seed in range(4):
        for point in verify.points(box_lo, box_hi, storage, 10_000 + round_seed):
            failed |= ~check(point, rows)
    assert float(failed.float().mean()) >= REFAIL, (
        f"{fmt.name}: only {int(failed.sum())}/{rows.numel()} groups one level wider failed again")


@pytest.mark.parametrize("storage", STORAGE, ids=str)
def test_each_group_is_at_most_two_to_the_minus_level_of_its_candidate(verified_fmt, storage):
    w = random_weights(shapes_for(verified_fmt, 1)[0], storage, seed=8)
    v = verified_fmt.verified(w)
    ratio = v.width_ratios()
    pinned = v.levels == verify.PINNED_LEVEL
    live = ~torch.isnan(ratio)
    bound = torch.exp2(-v.levels.double()) * (1 + 1e-9)
    assert bool((ratio[live & ~pinned] <= bound[live & ~pinned]).all())
    assert bool((ratio[live & pinned] == 0).all()) and bool((ratio[live] >= 0).all())
    assert 0.0 <= v.relative_width <= float(ratio[live].max())


@pytest.mark.parametrize("storage", STORAGE, ids=str)
def test_compact_box_rebuilds_adversarial_tensors_bit_for_bit(verified_fmt, storage):
    shape = shapes_for(verified_fmt, 1)[0]
    for name, w in _adversarial(shape, storage).items():
        compact, box = verified_fmt.compact_box(w), verified_fmt.preimage(w)
        rebuilt = compact.box()
        same = torch.equal(rebuilt.lo.view(torch.uint8), box.lo.view(torch.uint8)) and \
            torch.equal(rebuilt.hi.view(torch.uint8), box.hi.view(torch.uint8))
        assert same and box.contains(w), f"{verified_fmt.name} {name}: the compact box rebuilds another box"


@settings(max_examples=MAX_EXAMPLES * 5, deadline=None)
@given(a=st.floats(-1e3, 1e3, width=32), b=st.floats(-1e3, 1e3, width=32), u=st.floats(0, 1),
       k=st.integers(0, 24), storage=st.sampled_from(STORAGE))
def test_a_cell_holds_its_weight_and_is_two_to_the_minus_k_wide(a, b, u, k, storage):
    lo, hi = torch.tensor([[min(a, b)]]), torch.tensor([[max(a, b)]])
    w = cells.round_toward64(lo.double() + u * (hi.double() - lo.double()), storage, up=False)
    w = torch.maximum(w, cells.round_toward64(lo.double(), storage, up=True))   # representable, inside
    assume(bool(w.double() <= hi.double()))          # the interval holds a value of the storage dtype
    level = torch.tensor([[k]])
    j = cells.cell_index(w, lo, hi, level)
    box_lo, box_hi = cells.cell_box(lo, hi, level, j, storage)
    assert 0 <= int(j) < 2**k and box_lo.dtype == storage
    assert bool(box_lo <= w) and bool(w <= box_hi)
    assert float(box_hi.double() - box_lo.double()) <= float(hi.double() - lo.double()) * 2.0**-k * (1 + 1e-9)


@settings(max_examples=MAX_EXAMPLES * 5, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 2**40)), max_size=64))
def test_varbits_round_trip(pairs):
    lengths = torch.tensor([n for n, _ in pairs], dtype=torch.long)
    values = torch.tensor([v % (1 << n) for n, v in pairs], dtype=torch.long)
    assert torch.equal(unpack_varbits(pack_varbits(values, lengths), lengths), values)


@settings(max_examples=MAX_EXAMPLES * 5, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), max_size=200), st.sampled_from([1, 3, 1000]))
def test_rice_and_fixed_width_ints_round_trip_and_the_smaller_is_kept(values, spread):
    t = torch.tensor([v // spread for v in values], dtype=torch.long)
    fixed, rice, kept = PackedInts.pack(t), RiceInts.pack(t), pack_ints(t)
    assert torch.equal(fixed.unpack(), t) and torch.equal(rice.unpack(), t) and torch.equal(kept.unpack(), t)
    assert kept.nbytes == min(fixed.nbytes, rice.nbytes)
