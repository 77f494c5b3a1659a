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


@pytest.mark.parametrize(("name", "bound"), [("q4_k", 0.05), ("q6_k", 0.05), ("q2_k", 0.05), ("hqq", 0.0)])
def test_fresh_points_of_the_verified_box_rarely_change_a_group(name, bound):
    """Not promised, measured: random corners and interior points never tried during verification change at
    most ``bound`` of the groups (K-quant super-blocks; HQQ: the whole tensor) in fp32 storage."""
    fmt = formats.get(name)
    w = random_weights((2, 512) if name == "hqq" else (8, 512), torch.float32, seed=3)
    box, want = fmt.preimage(w), fmt.reference_quantize(w)
    changed, total = 0, 0
    for seed in range(4):
        for point in verify.points(box.lo, box.hi, torch.float32, 10_000 + seed)[2:]:
            got = fmt.reference_quantize(point)
            if name == "hqq":
                changed, total = changed + int(not got.same_as(want)), total + 1
                continue
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
    group settles at the first level >= its limit, plus the one-level margin; groups never accepted are pinned."""
    w = torch.zeros(3, 4)
    lo, hi = torch.full((3, 4), -1.0), torch.full((3, 4), 1.0)
    limits = torch.tensor([3, 9, 99])

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return points.abs().amax(1) <= torch.exp2(-limits[rows].float())

    v = verify.verify_and_shrink(w, lo, hi, check, torch.float32)
    assert v.levels.tolist() == [8, 12, verify.PINNED_LEVEL]
    assert torch.equal(v.lo[2], w[2]) and torch.equal(v.hi[2], w[2])
    assert v.pinned_fraction == pytest.approx(1 / 3) and v.shrunk_fraction == 1.0


def test_coupled_verification_rechecks_every_group_until_one_round_passes_whole():
    w = torch.zeros(2, 4)
    lo, hi = torch.full((2, 4), -1.0), torch.full((2, 4), 1.0)
    seen: list[int] = []

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        seen.append(rows.numel())
        return points.abs().amax(1) <= 2.0**-6

    v = verify.verify_and_shrink(w, lo, hi, check, torch.float32, coupled=True)
    assert set(seen) == {2} and v.levels.tolist() == [10, 10]


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


def test_missing_hqq_raises_with_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "hqq.core.quantize", None)
    with pytest.raises(MissingDependencyError, match=r"compsec\[hqq\]"):
        formats.get("hqq").reference_quantize(torch.zeros(64))


def test_layout_rejects_unknown_types():
    with pytest.raises(ValueError):
        layouts.parse(lib.quantize_rows(torch.zeros(1, 256), "Q4_K"), "Q8_K")


@pytest.mark.parametrize("coupled", [False, True])
def test_a_library_that_never_agrees_leaves_every_group_pinned(coupled):
    """After the round budget, unsettled groups are pinned: the box shrinks to the weights, never stays unverified."""
    w = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def check(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.zeros(rows.numel(), dtype=torch.bool)

    v = verify.verify_and_shrink(w, w - 1, w + 1, check, torch.float32, coupled=coupled)
    assert v.levels.tolist() == [verify.PINNED_LEVEL] * 3
    assert torch.equal(v.lo, w) and torch.equal(v.hi, w)
