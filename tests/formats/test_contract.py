"""The contract every registered format fulfils, run over ``compsec.formats.names()``.

A new format family gets all of this with no new test code: bit-for-bit agreement with the real library,
exact boxes (sound: corners and inner points keep codes and scales under the *real* library; tight: one
representable step beyond an edge changes them), round trip, positions and compact boxes.

Formats with ``guarantee = "verified"`` (K-quants, HQQ: scales found by a search over every weight of a group,
see :mod:`compsec.formats.verify`) promise less, and these tests check exactly what they promise: soundness at
the box's ``lo`` and ``hi`` corners (every group verified them; fresh random points are measured, not promised,
in test_verified.py), tightness of the *candidate* box (``fmt.candidate_box``: exact under the stored scales,
before shrinking; the shrink's own minimality: test_verified_tightness.py), and a compact box within 2 bytes per
parameter in fp16/bf16 storage (in fp32: under 3.75, below the weights' own 4 bytes).
Formats with ``range_limits(w)`` (K-quants, nested NF4/FP4: stored scales coarser than the weights) are
promised tight only at edges strictly inside those per-weight limits; formats with ``idempotent = False`` only
promise that re-quantizing dequantized weights moves them by at most half the quantization error.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compsec.formats.base import round_toward

from .conftest import MAX_EXAMPLES, STORAGE, random_weights, shapes_for

PROPERTY = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow])
#: a verified box costs dozens of library calls (verify.py), so fewer examples; each still checks both corners
VERIFIED_PROPERTY = settings(max_examples=max(3, MAX_EXAMPLES // 5), deadline=None, derandomize=False,
                             suppress_health_check=[HealthCheck.too_slow])
TIGHTNESS_SAMPLE = 12


def _assert_same(fmt, w: torch.Tensor, what: str) -> None:
    ours, ref = fmt.quantize(w), fmt.reference_quantize(w)
    assert ours.same_as(ref), f"{fmt.name} {what} {w.dtype}: {ours.mismatch(ref)}"


def _beyond(x: torch.Tensor, up: bool) -> torch.Tensor:
    """The next representable value of ``x``'s dtype above (``up``) or below ``x``."""
    return torch.nextafter(x, torch.full_like(x, float("inf") if up else float("-inf")))


@pytest.mark.parametrize("dtype", STORAGE, ids=str)
def test_quantize_matches_library_on_random_weights(fmt, dtype):
    for i, shape in enumerate(shapes_for(fmt)):
        for scale in (0.02, 1.0, 300.0):
            _assert_same(fmt, random_weights(shape, dtype, seed=i, scale=scale), f"random x{scale}")


def _adversarial(shape: tuple[int, ...], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    noise = torch.randn(shape, generator=gen)
    tiny = torch.finfo(dtype).tiny
    one_hot = torch.zeros(shape)
    one_hot.view(-1)[::37] = 1.5
    rows = noise.reshape(shape[0], -1) * torch.logspace(-6, 3, shape[0]).view(-1, 1)
    cases = {
        "zeros": torch.zeros(shape), "neg-zeros": -torch.zeros(shape), "constant": torch.full(shape, 0.37),
        "constant-neg": torch.full(shape, -2.5), "one-hot": one_hot, "subnormal": noise * tiny * 0.5,
        "smallest-normal": noise * tiny * 4, "large": noise * 1e4, "mixed-magnitudes": rows.reshape(shape),
        "integers": torch.randint(-8, 9, shape, generator=gen).float(),
    }
    return {k: v.to(dtype) for k, v in cases.items()}


@pytest.mark.parametrize("dtype", STORAGE, ids=str)
def test_quantize_matches_library_on_adversarial_weights(fmt, dtype):
    shape = shapes_for(fmt, 1)[0]
    for name, w in _adversarial(shape, dtype).items():
        _assert_same(fmt, w, name)


@pytest.mark.parametrize("dtype", STORAGE, ids=str)
def test_quantize_matches_library_exactly_on_decision_edges(fmt, dtype):
    """Weights sitting exactly on the box edges (the decision thresholds) and one step beyond them."""
    w = random_weights(shapes_for(fmt, 1)[0], dtype, seed=3)
    box = fmt.preimage(w)
    for up in (False, True):
        edge = box.hi if up else box.lo
        _assert_same(fmt, edge, "on edge")
        _assert_same(fmt, torch.where(box.pinned, w, _beyond(edge, up)), "one step beyond edge")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_weights_raise_value_error(fmt, bad):
    w = random_weights(shapes_for(fmt, 1)[0], torch.float32, seed=0)
    w.view(-1)[5] = bad
    with pytest.raises(ValueError):
        fmt.quantize(w)
    with pytest.raises(ValueError):
        fmt.preimage(w)


def _verified(fmt) -> bool:
    return getattr(fmt, "guarantee", "exact") == "verified"


def _points_inside(box, storage: torch.dtype, seed: int) -> list[torch.Tensor]:
    """Corners (all-lo, all-hi, a random mix) and a uniform random point of the box, in ``storage``."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = box.lo, box.hi
    mix = torch.where(torch.rand(lo.shape, generator=gen) < 0.5, lo, hi)
    u = torch.rand(lo.shape, generator=gen)
    inner = round_toward(lo.float() + u * (hi.float() - lo.float()), storage, up=False)
    inner = torch.minimum(torch.maximum(inner, lo), hi)
    return [lo, hi, mix, inner]


def _check_sound(fmt, storage: torch.dtype, seed: int, scale: float) -> None:
    w = random_weights(shapes_for(fmt, 1)[0], storage, seed=seed, scale=scale)
    box = fmt.preimage(w)
    assert box.lo.dtype == storage and box.hi.dtype == storage
    assert box.contains(w)
    want = fmt.reference_quantize(w)
    points = [box.lo, box.hi] if _verified(fmt) else _points_inside(box, storage, seed)
    for i, point in enumerate(points):
        got = fmt.reference_quantize(point)
        assert got.same_as(want), f"{fmt.name}: point {i} of the box changes the library's output: {got.mismatch(want)}"


@pytest.mark.parametrize("storage", STORAGE, ids=str)
@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 0.05, 1.0, 40.0]))
def test_box_is_sound_under_the_real_library(exact_fmt, storage, seed, scale):
    _check_sound(exact_fmt, storage, seed, scale)


@pytest.mark.parametrize("storage", STORAGE, ids=str)
@VERIFIED_PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 0.05, 1.0, 40.0]))
def test_verified_box_corners_are_sound_under_the_real_library(verified_fmt, storage, seed, scale):
    """Each example re-verifies by itself (with the real library) the corners the format verified."""
    _check_sound(verified_fmt, storage, seed, scale)


@pytest.mark.parametrize("storage", STORAGE, ids=str)
def test_box_is_tight_one_step_beyond_each_edge(fmt, storage):
    w = random_weights(shapes_for(fmt, 1)[0], storage, seed=11)
    box = fmt.candidate_box(w) if _verified(fmt) else fmt.preimage(w)
    want = fmt.reference_quantize(w)
    movable = ~box.pinned
    if hasattr(fmt, "range_limits"):     # coarse stored scales absorb one-ulp moves past a group's range
        lim_lo, lim_hi = fmt.range_limits(w)
        movable &= (_beyond(box.lo, False) > lim_lo) & (_beyond(box.hi, True) < lim_hi)
    unpinned = torch.nonzero(movable.reshape(-1)).flatten()
    assert unpinned.numel() > 0, f"{fmt.name}: every element is pinned on random weights"
    sample = unpinned[torch.randperm(unpinned.numel(), generator=torch.Generator().manual_seed(0))]
    # a format whose search feeds back on the moved weight (HQQ: the zero is a float32 mean over the group, and
    # one ulp of a weight can move it by one of its own ulps) is held to most edges, the rest to all of them
    loose = getattr(fmt, "candidate_feedback", False)
    tried, still = 0, []
    for i in sample[:TIGHTNESS_SAMPLE].tolist():
        for up in (False, True):
            step = _beyond((box.hi if up else box.lo).reshape(-1)[i], up)
            if not bool(torch.isfinite(step)):
                continue
            moved = w.clone()
            moved.view(-1)[i] = step
            tried += 1
            if fmt.reference_quantize(moved).same_as(want):
                still.append(f"element {i} moved one {storage} step {'above hi' if up else 'below lo'}")
    allowed = int(0.1 * tried) if loose else 0
    assert len(still) <= allowed, f"{fmt.name}: still quantizes identically: {still}: the box is not tight"


def test_preimage_for_narrower_storage_matches_casting_first(fmt):
    w = random_weights(shapes_for(fmt, 1)[0], torch.bfloat16, seed=5)
    direct, via_fp32 = fmt.preimage(w), fmt.preimage(w.float(), torch.bfloat16)
    assert torch.equal(direct.lo, via_fp32.lo) and torch.equal(direct.hi, via_fp32.hi)


@pytest.mark.parametrize("dtype", STORAGE, ids=str)
def test_round_trip_is_idempotent(fmt, dtype):
    w = random_weights(shapes_for(fmt, 1)[0], dtype, seed=2)
    q1 = fmt.quantize(w)
    d1 = fmt.dequantize(q1)
    q2 = fmt.quantize(d1)
    d2 = fmt.dequantize(q2)
    assert d1.dtype == torch.float32 and tuple(d1.shape) == tuple(w.shape)
    if not getattr(fmt, "idempotent", True):
        # search-based scales (K-quants, HQQ) and nested statistics settle near, not on, the first result
        drift, error = float((d2 - d1).abs().max()), float((w.float() - d1).abs().max())
        assert drift <= 0.5 * error, f"{fmt.name}: re-quantizing moved weights by {drift:.3g} (error {error:.3g})"
        return
    torch.testing.assert_close(d2, d1, rtol=1e-5, atol=0)
    nonzero = (d1 != 0).reshape(-1)
    c1, c2 = q1.codes.reshape(-1).long(), q2.codes.reshape(-1).long()
    if c1.numel() == nonzero.numel():
        assert torch.equal(c1[nonzero], c2[nonzero]), f"{fmt.name}: re-quantizing dequantized weights moved codes"
    else:
        assert torch.equal(c1, c2)


@pytest.mark.parametrize("storage", STORAGE, ids=str)
def test_positions_are_in_unit_interval_and_nan_exactly_when_pinned(fmt, storage):
    w = random_weights(shapes_for(fmt, 1)[0], storage, seed=4)
    pos, pinned = fmt.positions(w), fmt.preimage(w).pinned
    assert pos.dtype == torch.float32 and pos.shape == w.shape
    assert bool(torch.isnan(pos).eq(pinned).all())
    assert bool(((pos[~pinned] >= 0) & (pos[~pinned] <= 1)).all())


@pytest.mark.parametrize("storage", STORAGE, ids=str)
def test_compact_box_rebuilds_the_same_box_in_at_most_two_bytes_per_param(fmt, storage):
    for shape in shapes_for(fmt):
        w = random_weights(shape, storage, seed=6)
        compact, box = fmt.compact_box(w), fmt.preimage(w)
        rebuilt = compact.box()
        assert rebuilt.lo.dtype == storage
        assert torch.equal(rebuilt.lo, box.lo) and torch.equal(rebuilt.hi, box.hi)
        assert compact.bytes_per_param <= 2.0, f"{fmt.name}: {compact.bytes_per_param:.3f} bytes/param"
