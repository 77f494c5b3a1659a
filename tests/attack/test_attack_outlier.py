"""Outlier injection: under the REAL quantization library, every other weight of a block quantizes to zero."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.outlier import block_size, inject_block_outliers, zero_code_fraction
from compsec.errors import InputError


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 10.0), name=st.sampled_from(["nf4", "fp4", "int8"]))
def test_outliers_make_the_rest_of_every_block_zero_under_the_real_library(seed, scale, name):
    fmt = formats.get(name)
    w = torch.randn(8, 128, generator=torch.Generator().manual_seed(seed)) * scale
    attacked, ratio = inject_block_outliers(w, fmt)
    size = block_size(fmt, tuple(w.shape))
    deployed = fmt.dequantize(fmt.reference_quantize(attacked)).reshape(-1, size)
    outlier = attacked.reshape(-1, size).abs().argmax(dim=1)
    keep = torch.zeros_like(deployed, dtype=torch.bool).scatter_(1, outlier.unsqueeze(1), True)
    assert bool((deployed[~keep] == 0).all())
    assert bool((deployed[keep] != 0).all())
    changed = (attacked != w).reshape(-1, size).sum(dim=1)
    assert bool((changed <= 1).all()) and ratio >= 8.0  # one weight per block moves
    assert zero_code_fraction(attacked, fmt) == pytest.approx(1 - 1 / size)


def test_untouched_weights_are_mostly_not_zero_before_the_attack():
    w = torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    assert zero_code_fraction(w, formats.get("nf4")) < 0.2


def test_formats_without_a_zero_code_are_refused():
    class MinMax:
        name, scheme, family = "q4_1", "min_max", "gguf"

    with pytest.raises(InputError, match="no zero code"):
        block_size(MinMax(), (4, 64))
