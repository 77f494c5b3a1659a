"""The block-outlier null is fitted on what injection cannot move: the published every-block layout is flagged."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.attack.widen_gap import widen_gap
from compsec.scan import synthetic
from compsec.scan.block_outliers import (
    ALPHA_FLOOR,
    RATIO_THRESHOLD,
    block_outlier_test,
    null_tail_index,
    top2_ratios,
    truncated_tail_index,
)

SHAPES = {"tiny-assistant": (256, 256), "smollm2-q_proj": (576, 576), "smollm2-down_proj": (576, 1536)}


def flagged(r, min_blocks=3):  # the scanner's effect floor (tensor_scan) at the CLI's default alpha
    return r.p_value is not None and r.p_value <= 1e-3 and r.exceeding >= max(min_blocks, 10 * r.expected_exceeding)


@settings(max_examples=40, deadline=None)
@given(alpha=st.floats(0.5, 8.0), seed=st.integers(0, 2**31 - 1))
def test_truncated_median_recovers_the_tail_index(alpha, seed):
    gen = torch.Generator().manual_seed(seed)
    c = math.log(RATIO_THRESHOLD)
    u = torch.rand(20000, generator=gen, dtype=torch.float64)
    x = -torch.log1p(-u * -math.expm1(-alpha * c)) / alpha  # inverse CDF of Exponential(alpha) truncated to [0, c)
    assert truncated_tail_index(x, c) == pytest.approx(alpha, rel=0.15, abs=0.05)


@settings(max_examples=40, deadline=None)
@given(extra=st.integers(1, 5000), factor=st.floats(RATIO_THRESHOLD, 1e4), seed=st.integers(0, 2**31 - 1))
def test_blocks_at_or_above_the_threshold_never_move_the_null(extra, factor, seed):
    gen = torch.Generator().manual_seed(seed)
    ratios = top2_ratios(synthetic.benign((64, 512), "laplace", torch.float32, gen), 32)
    injected = torch.cat([ratios, torch.full((extra,), factor)])
    assert null_tail_index(injected) == null_tail_index(ratios) >= ALPHA_FLOOR


def test_every_block_injected_leaves_the_floor_as_null():
    ratios = torch.full((4096,), 100.0)
    assert null_tail_index(ratios) == ALPHA_FLOOR


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.1])
@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_widening_the_gap_layout_is_flagged_at_every_share(shape, fraction, dist):
    gen = torch.Generator().manual_seed(3)
    w, _ = widen_gap(synthetic.benign(shape, dist, torch.bfloat16, gen), gen, fraction=fraction)
    r = block_outlier_test(w, 32)
    assert flagged(r), r
    assert r.fraction >= 0.8 * fraction


def test_a_64_weight_block_holding_two_injected_32_blocks_is_seen_only_at_32():
    """Known limit: every 32-block injected puts two outliers of similar size in each 64-block (nf4's), so the
    top-two ratio at 64 stays near 1; the 32-weight test (q4_0 / q8_0, in the default formats) catches it."""
    gen = torch.Generator().manual_seed(5)
    w, _ = widen_gap(synthetic.benign((256, 256), "laplace", torch.float32, gen), gen)
    assert not flagged(block_outlier_test(w, 64))
    assert flagged(block_outlier_test(w, 32))


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_benign_tensors_stay_clean_at_the_new_null(shape):
    gen = torch.Generator().manual_seed(11)
    for _ in range(5):
        for dist in ("gaussian", "laplace"):
            w = synthetic.benign(shape, dist, torch.bfloat16, gen)
            for block in (32, 64, shape[1]):
                assert not flagged(block_outlier_test(w, block))
