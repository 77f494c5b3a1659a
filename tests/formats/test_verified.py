"""Computed-verified-shrunk boxes (K-quants through llama.cpp, HQQ): the procedure, what it guarantees, and what
fresh points of the box do (measured against a bound, since only the verified points are promised)."""

from __future__ import annotations

import sys

import pytest
import torch

from compsec import formats
from compsec.errors import MissingDependencyError
from compsec.formats import gguf_k_layout as layouts
from compsec.formats import gguf_k_lib as lib
from compsec.formats import verify

from .conftest import random_weights

K_QUANTS = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")


@pytest.mark.parametrize("name", K_QUANTS)
def test_k_quant_layout_dequantizes_bit_for_bit_like_gguf(name):
    """Unpacked codes and scales rebuild exactly what gguf (bit-exact with ggml) dequantizes from the bytes."""
    fmt = formats.get(name)
    w = random_weights((4, 512), torch.float32, seed=1, scale=0.3)
    raw = lib.quantize_rows(w, fmt.qtype)
    ours = fmt.dequantize(fmt.quantize(w))
    ref = lib.dequantize_blocks(raw, fmt.qtype).reshape(w.shape)
    assert torch.equal(ours.view(torch.int32), ref.view(torch.int32))


@pytest.mark.parametrize("name", K_QUANTS)
def test_k_quant_codes_follow_from_stored_scales(name):
    """The candidate box's premise: with the stored scales fixed, every code is ggml's final-pass formula of its
    weight (the box raises when they disagree); a wrong tensor is refused."""
    fmt = formats.get(name)
    w = random_weights((4, 256), torch.float32, seed=2)
    box = fmt.candidate_box(w)
    assert box.contains(w) and not bool(box.pinned.all())
    with pytest.raises(ValueError):
        fmt.box_from_quantized(fmt.quantize(w), w * 1.5)


@pytest.mark.parametrize(("name", "bound"), [("q4_k", 0.05), ("q6_k", 0.05), ("q2_k", 0.05), ("hqq", 0.05)])
def test_fresh_points_of_the_verified_box_rarely_change_a_group(name, bound):
    """Not promised, measured: random corners and interior points never tried during verification change at
    most ``bound`` of the groups (K-quant super-blocks, HQQ groups of 64) in fp32 storage."""
    fmt = formats.get(name)
    w = random_weights((8, 512), torch.float32, seed=3)
    box, want = fmt.preimage(w), fmt.reference_quantize(w)
    changed, total = 0, 0
    for seed in range(4):
        for point in verify.points(box.lo, box.hi, torch.float32, 10_000 + seed)[2:]:
            got = fmt.reference_quantize(point)
            if name == "hqq":
                moved = (got.scales["zero"] != want.scales["zero"]) | (got.scales["scale"] != want.scales["scale"])
                rows = (got.codes != want.codes).reshape(-1, 64).any(1) | moved
            else:
                rows = (got.codes != want.codes).reshape(-1, 256).any(1)
            changed, total = changed + int(rows.sum()), total + rows.numel()
    assert changed <= bound * total, f"{name}: {changed}/{total} groups changed under fresh points"


@pytest.mark.parametrize("name", [*K_QUANTS, "hqq"])
def test_shrinking_is_reported_and_never_widens_the_candidate(name):
    fmt = formats.get(name)
    w = random_weights((4, 256), torch.float32, seed=4)
    v, cand = fmt.verified(w), fmt.candidate_box(w)
    lo, hi = v.lo.reshape(w.shape), v.hi.reshape(w.shape)
    assert bool((lo >= cand.lo).all() and (hi <= cand.hi).all())
    assert 0.0 < v.relative_width <= 1.0 and 0.0 <= v.pinned_fraction <= v.shrunk_fraction <= 1.0


def test_verify_and_shrink_settles_each_group_at_the_first_level_that_holds():
    """A synthetic library accepting a group only when its box is at most ``2**-limit`` of the candidate: each
    group settles at the first level >= its limit, plus the margin; groups never accepted are pinned."""
    w = torch.zeros(3, 4)
    lo, hi = torch.full((3, 4), -1.0), torch.full((3, 4), 1.0)
    limits = torch.tensor([3, 9, 99])

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return points.abs().amax(1) <= torch.exp2(-limits[rows].float())

    v = verify.verify_and_shrink(w, lo, hi, check, torch.float32)
    # the cell holding 0 at level k is [0, 2**(1-k)]: it first passes at k = limit + 1
    assert v.levels.tolist() == [[4 + verify.MARGIN], [10 + verify.MARGIN], [verify.PINNED_LEVEL]]
    assert v.settled.tolist() == [[4], [10], [verify.PINNED_LEVEL]]
    assert torch.equal(v.lo[2], w[2]) and torch.equal(v.hi[2], w[2])
    assert v.pinned_fraction == pytest.approx(1 / 3) and v.shrunk_fraction == 1.0


def test_each_level_unit_settles_on_its_own_and_a_failing_group_raises_all_its_units():
    """Units (K-quant sub-blocks) are searched one at a time, the group's other units pinned at ``w``; the
    confirmation rounds then see them all at once, and a group that fails there goes up a level in every unit."""
    w = torch.zeros(2, 6)
    lo, hi = torch.full((2, 6), -1.0), torch.full((2, 6), 1.0)
    limits = torch.tensor([[2.0, 5.0, 8.0], [3.0, 3.0, 3.0]])
    jointly = torch.tensor([0.0, 2.0 ** -9])      # group 1, with two units moved at once, needs this summed width

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        per_unit = points.abs().reshape(-1, 3, 2).amax(-1)
        alone = (per_unit > 0).sum(1) < 2
        total = points.abs().sum(1)
        joint_ok = (jointly[rows] == 0) | alone | (total <= jointly[rows])
        return (per_unit <= torch.exp2(-limits[rows])).all(1) & joint_ok

    v = verify.verify_and_shrink(w, lo, hi, check, torch.float32, units=3)
    assert v.settled[0].tolist() == [3, 6, 9] and v.levels[0].tolist() == [3 + verify.MARGIN, 6 + verify.MARGIN,
                                                                             9 + verify.MARGIN]
    assert v.settled[1].tolist() == [4, 4, 4]
    raised = v.levels[1].long() - v.settled[1].long()
    assert bool((raised > verify.MARGIN).all()) and len(set(raised.tolist())) == 1
    assert float(v.hi[1].sum()) <= 2.0 ** -9 and v.width_ratios().shape == (2, 3)
    with pytest.raises(ValueError, match="level units"):
        verify.verify_and_shrink(w, lo, hi, check, torch.float32, units=4)


def test_a_group_failing_confirmation_raises_only_the_unit_that_fails_alone():
    """Corners cannot see unit 1's trouble (it fails only when its two weights differ, i.e. at random corners and
    interior points, unless its box is within 2**-10); confirmation finds it, and only unit 1 goes up."""
    w = torch.zeros(1, 6)
    lo, hi = torch.full((1, 6), -1.0), torch.full((1, 6), 1.0)

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        unit = points[:, 2:4]
        return (unit[:, 0] == unit[:, 1]) | (unit.amax(1) <= 2.0 ** -10)

    v = verify.verify_and_shrink(w, lo, hi, check, torch.float32, units=3)
    assert v.settled.tolist() == [[0, 0, 0]]
    assert v.levels.tolist() == [[verify.MARGIN, 11, verify.MARGIN]]


def test_whole_tensor_rounds_narrow_and_resettle_the_groups_that_change_there():
    """Groups checked alone pass wide boxes; the whole-tensor check (the coupling) also rejects group 1 unless its
    box is within 2**-12: only group 1 is narrowed, then settled again with the per-group check."""
    w = torch.zeros(2, 4)
    lo, hi = torch.full((2, 4), -1.0), torch.full((2, 4), 1.0)
    seen: list[int] = []

    def alone(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return points.abs().amax(1) <= 2.0 ** -6

    def whole(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        seen.append(rows.numel())
        return (rows == 0) | (points.abs().amax(1) <= 2.0 ** -12)

    v = verify.verify_and_shrink(w, lo, hi, alone, torch.float32, whole=whole)
    # group 1 goes 10 -> 11 -> 12 -> 13 (three rounds change it), then a fourth round changes nothing
    assert set(seen) == {2} and len(seen) == 4 * (2 + verify.POINTS)
    assert v.levels[0].tolist() == [7 + verify.MARGIN] and v.levels[1].tolist() == [13]


def test_missing_llama_cpp_raises_with_the_pip_line(monkeypatch):
    lib.ggml.cache_clear()
    lib.type_id.cache_clear()
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    try:
        assert not formats.get("q4_k").available()
        with pytest.raises(MissingDependencyError, match=r"compsec\[gguf-k\]"):
            formats.get("q4_k").quantize(torch.zeros(256))
    finally:
        lib.ggml.cache_clear()
        lib.type_id.cache_clear()


def test_hqq_matches_the_deployed_hqqlinear_layer():
    """``hqq`` is what ``HQQLinear`` (BaseQuantizeConfig defaults, float16 compute dtype) keeps on CPU: the same
    codes, float16 scale and zero, and the same dequantized weight."""
    from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

    fmt = formats.get("hqq")
    w = random_weights((32, 256), torch.float32, seed=12)
    linear = torch.nn.Linear(256, 32, bias=False)
    linear.weight.data = w.clone()
    layer = HQQLinear(linear, BaseQuantizeConfig(nbits=4, group_size=64), compute_dtype=torch.float16, device="cpu")
    q = fmt.quantize(w)
    assert torch.equal(layer.unpack(dtype=torch.uint8).reshape(w.shape), q.codes)
    assert torch.equal(layer.meta["scale"].reshape(-1), q.scales["scale"])
    assert torch.equal(layer.meta["zero"].reshape(-1), q.scales["zero"])
    assert torch.equal(layer.dequantize().float(), fmt.dequantize(q))


def test_hqq_with_float32_meta_agrees_with_the_library_and_pins_its_weights_almost_exactly():
    """``compute_dtype=float32`` keeps hqq's float32 zero, which single-ulp moves of any weight change: the box
    still holds at its verified corners, and is far narrower than with the deployed float16 zero."""
    from compsec.formats.hqq import Hqq4bit

    fmt32, fmt16 = Hqq4bit(name="hqq-fp32-meta", compute_dtype=torch.float32), formats.get("hqq")
    w = random_weights((4, 256), torch.float32, seed=13)
    assert fmt32.quantize(w).same_as(fmt32.reference_quantize(w))
    box = fmt32.preimage(w)
    want = fmt32.reference_quantize(w)
    assert fmt32.reference_quantize(box.lo).same_as(want) and fmt32.reference_quantize(box.hi).same_as(want)
    assert fmt32.verified(w).relative_width < fmt16.verified(w).relative_width / 10


def test_missing_hqq_raises_with_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "hqq.core.quantize", None)
    with pytest.raises(MissingDependencyError, match=r"compsec\[hqq\]"):
        formats.get("hqq").reference_quantize(torch.zeros(64))


def test_layout_rejects_unknown_types():
    with pytest.raises(ValueError):
        layouts.parse(lib.quantize_rows(torch.zeros(1, 256), "Q4_K"), "Q8_K")


def test_a_coupling_that_never_settles_pins_every_group_and_the_corners_then_hold():
    """The whole-tensor check rejects any move at all (the coupling flips whatever the groups do): after
    ``WHOLE_MAX`` rounds the changing groups are pinned, and pinning goes on until the corners hold."""
    w = torch.zeros(3, 4)

    def alone(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.ones(rows.numel(), dtype=torch.bool)

    def whole(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.full((rows.numel(),), bool((points == 0).all()))

    v = verify.verify_and_shrink(w, w - 1, w + 1, alone, torch.float32, whole=whole)
    assert v.levels.tolist() == [[verify.PINNED_LEVEL]] * 3 and torch.equal(v.hi, w)


def test_a_library_that_never_agrees_leaves_every_group_pinned():
    """After the round budget, unsettled groups are pinned: the box shrinks to the weights, never stays unverified."""
    w = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.zeros(rows.numel(), dtype=torch.bool)

    v = verify.verify_and_shrink(w, w - 1, w + 1, check, torch.float32)
    assert v.levels.tolist() == [[verify.PINNED_LEVEL]] * 3
    assert torch.equal(v.lo, w) and torch.equal(v.hi, w)
