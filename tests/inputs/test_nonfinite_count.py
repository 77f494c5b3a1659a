"""The NaN/Inf count every loader and ``check`` use: exact for any tensor, whatever the sum screen says."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.integrity.safetensors_check import nonfinite_count

SPECIALS = (float("nan"), float("inf"), float("-inf"))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64]),
       st.lists(st.tuples(st.integers(0, 299), st.sampled_from(SPECIALS)), max_size=6),
       st.floats(1e-3, 3e38), st.integers(0, 2**31 - 1))
def test_count_is_exact_even_when_finite_values_overflow_the_sum(size, dtype, specials, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    tensor = (torch.rand(size, generator=generator, dtype=torch.float64) * scale).to(dtype)
    tensor[~tensor.isfinite()] = torch.finfo(dtype).max  # huge finite values: their sum may overflow
    for index, value in specials:
        tensor[index % size] = value
    assert nonfinite_count(tensor.reshape(-1, 1) if size % 2 else tensor) == int((~tensor.isfinite()).sum())


def test_integer_tensors_have_no_nonfinite_values():
    assert nonfinite_count(torch.arange(10)) == 0
