"""Clipping undoes outlier injection under the REAL quantization library and leaves clean blocks alone."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.outlier import inject_block_outliers, zero_code_fraction
from compsec.defend.clip import block_size_for, clip_block_outliers


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 10.0), name=st.sampled_from(["nf4", "fp4", "int8"]))
def test_clipping_brings_the_other_codes_of_an_outlier_block_back(seed, scale, name):
    fmt = formats.get(name)
    w = torch.randn(8, 128, generator=torch.Generator().manual_seed(seed)) * scale
    attacked, _ = inject_block_outliers(w, fmt)
    assert zero_code_fraction(attacked, fmt) > 0.95
    size = block_size_for(fmt, tuple(w.shape))
    clipped, n = clip_block_outliers(attacked, size)
    assert n == w.numel() // size
    deployed = fmt.dequantize(fmt.reference_quantize(clipped)).reshape(-1, size)
    nonzero_per_block = (deployed != 0).sum(dim=1)
    assert bool((nonzero_per_block > 1).all())                 # the rest of every block is alive again
    assert zero_code_fraction(clipped, fmt) <= zero_code_fraction(w, fmt) + 0.1
    assert float(clipped.abs().max()) <= float(attacked.abs().max())


@pytest.mark.parametrize("name", ["nf4", "int8", "q4_0"])
def test_clean_tensors_are_left_bit_identical(name):
    fmt = formats.get(name)
    w = torch.randn(16, 256, generator=torch.Generator().manual_seed(3)) * 0.05
    clipped, n = clip_block_outliers(w, block_size_for(fmt, tuple(w.shape)))
    assert n == 0 and torch.equal(clipped, w)


def test_block_layouts():
    assert block_size_for(formats.get("nf4"), (4, 64)) == 64
    assert block_size_for(formats.get("int8"), (4, 96)) == 96
    assert block_size_for(formats.get("q4_0"), (4, 64)) == 32
    assert block_size_for(formats.get("nf4"), (3, 10)) is None
