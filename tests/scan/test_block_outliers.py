"""Block-outlier detector: benign heavy- and light-tailed tensors stay clean; outlier injection is flagged."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.scan import synthetic
from compsec.scan.block_outliers import block_outlier_test, top2_ratios


def flagged(r, alpha=1e-3, min_blocks=3):
    return r.p_value is not None and r.p_value <= alpha and r.exceeding >= max(min_blocks, 10 * r.expected_exceeding)


def student_t(shape, gen, dof=3.0):
    """Heavy-tailed weights (real LLM weights have heavier tails than Gaussian)."""
    z = torch.randn(shape, generator=gen)
    chi2 = torch.randn((int(dof),) + shape, generator=gen).pow(2).sum(0)
    return 0.02 * z / (chi2 / dof).sqrt()


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False, width=32), min_size=8, max_size=8))
def test_top2_ratio_is_largest_over_second_largest_magnitude(values):
    mags = sorted((abs(v) for v in values), reverse=True)
    ratios = top2_ratios(torch.tensor([values]), 8)
    if mags[0] == 0:
        assert ratios.numel() == 0
    else:
        expected = mags[0] / mags[1] if mags[1] else float("inf")
        assert float(ratios[0]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("block", [32, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_benign_tensors_are_clean_over_many_seeds(block, dtype):
    gen = torch.Generator().manual_seed(block)
    for _ in range(20):
        for w in (synthetic.benign((64, 512), "gaussian", dtype, gen),
                  synthetic.benign((64, 512), "laplace", dtype, gen), student_t((64, 512), gen).to(dtype)):
            assert not flagged(block_outlier_test(w, block))


@pytest.mark.parametrize("block", [32, 64])
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.3])
def test_outlier_injection_is_flagged(block, fraction):
    gen = torch.Generator().manual_seed(7)
    w = synthetic.outlier_injected(synthetic.benign((64, 512), "laplace", torch.bfloat16, gen), block, fraction, gen)
    r = block_outlier_test(w, block)
    assert flagged(r), r
    assert r.fraction == pytest.approx(fraction, abs=0.03)


def test_grid_derived_block_without_a_tail_is_untestable_not_flagged():
    w = torch.tensor([[1.0, -1.0] * 16] * 4)
    r = block_outlier_test(w, 32)
    assert r.p_value is None and not flagged(r)
    with pytest.raises(ValueError, match="multiple"):
        block_outlier_test(torch.zeros(2, 30), 32)
