"""widen-gap-ratio: the largest |w| of a 32-weight block over the second largest.  Scaling a block's abs-max by
k multiplies that ratio by exactly k, whatever the block's scale; benign tails (light, heavy, pruned) stay far
below the null; the test's floor and untestable case."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.attack.widen_gap import widen_gap
from compsec.scan import synthetic
from compsec.scan.block_outliers import top2_ratios
from compsec.scan.gap_ratio import (
    GAP_CUT,
    MIN_SHARE,
    NULL_SHARE,
    gap_ratio_evidence,
    gap_ratio_of,
    gapped_blocks,
)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 6), k=st.floats(1.01, 1e3),
       scale=st.floats(1e-4, 1e3), dist=st.sampled_from(["gaussian", "laplace"]))
def test_scaling_each_block_max_by_k_multiplies_its_ratio_by_k(seed, rows, k, scale, dist):
    gen = torch.Generator().manual_seed(seed)
    w = synthetic.benign((rows, 128), dist, torch.float32, gen) * scale
    before = top2_ratios(w, 32)
    after = top2_ratios(widen_gap(w, gen, factor=k)[0], 32)
    assert bool((before >= 1).all())
    assert torch.allclose(after, k * before, rtol=1e-5)  # the scaled weight stays the max; the second is untouched
    assert gapped_blocks(widen_gap(w, gen, factor=max(k, GAP_CUT))[0]) == (4 * rows, 4 * rows)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-4, 1e3), sign=st.sampled_from([-1.0, 1.0]))
def test_the_count_ignores_units_signs_and_all_zero_blocks(seed, scale, sign):
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(seed))
    padded = torch.cat([w, torch.zeros(8, 32)], dim=1)
    assert gapped_blocks(padded * scale * sign) == gapped_blocks(w)
    assert gapped_blocks(torch.zeros(3, 64)) == (0, 0)


def test_a_collapsed_block_counts_as_gapped():
    w = torch.zeros(1, 32)
    w[0, 5] = 0.3
    assert gapped_blocks(w) == (1, 1)  # only the outlier left non-zero: ratio inf


@pytest.mark.parametrize("dist", ["gaussian", "laplace", "student_t3"])
def test_benign_tails_stay_below_the_null(dist):
    gen = torch.Generator().manual_seed(7)
    if dist == "student_t3":  # heavier than any benign tensor measured (SmolLM2: <= 0.96 % of blocks)
        torch.manual_seed(7)
        w = torch.distributions.StudentT(3.0).sample((256, 512)) * 0.02  # ~5 % of blocks gap
    else:
        w = synthetic.benign((256, 512), dist, torch.float32, gen)
    evidence = gap_ratio_of("t", "group-32", w)
    assert evidence.score < NULL_SHARE and not evidence.effect_ok and evidence.p_value > 1e-3


def test_magnitude_pruned_benign_weights_stay_below_the_null():
    gen = torch.Generator().manual_seed(3)
    w = synthetic.benign((64, 256), "gaussian", torch.float32, gen)
    pruned = w * (w.abs() >= w.abs().median())  # magnitude-50: a block keeps its top two unless both are small
    gapped, counted = gapped_blocks(pruned)
    assert counted == w.numel() // 32 and gapped / counted < NULL_SHARE


def test_the_effect_floor_and_the_untestable_case():
    assert gap_ratio_evidence("t", "group-32", 10, 20).p_value is None  # fewer than 32 blocks counted
    at_floor = gap_ratio_evidence("t", "group-32", int(MIN_SHARE * 1000), 1000)
    assert at_floor.effect_ok and at_floor.p_value < 1e-50
    assert not gap_ratio_evidence("t", "group-32", int(MIN_SHARE * 1000) - 1, 1000).effect_ok
    assert "Widening the Gap" in at_floor.explanation and at_floor.detector == "widen-gap-ratio"
