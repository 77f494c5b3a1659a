"""The grid-aware null: floors/ceilings on storage grids, rounding-cell masses, tails, Benjamini-Hochberg."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.scan.aggregate import benjamini_hochberg
from compsec.scan.null import binomial_tail, grid_ceil, grid_floor, lower_cell_edge, upper_cell_edge

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(x=finite, dtype=st.sampled_from(DTYPES))
def test_grid_floor_and_ceil_are_the_nearest_representable_values(x, dtype):
    t = torch.tensor([x], dtype=torch.float64)
    lo, hi = grid_floor(t, dtype), grid_ceil(t, dtype)
    assert lo.dtype == hi.dtype == dtype
    assert float(lo.double()) <= x <= float(hi.double())
    above = torch.nextafter(lo, torch.tensor([math.inf], dtype=dtype))
    below = torch.nextafter(hi, torch.tensor([-math.inf], dtype=dtype))
    assert float(above.double()) > x and float(below.double()) < x


@settings(max_examples=40, deadline=None)
@given(x=st.floats(min_value=1e-3, max_value=1e3), dtype=st.sampled_from(DTYPES))
def test_rounding_cells_tile_the_line(x, dtype):
    v = torch.tensor([x], dtype=torch.float64).to(dtype)
    nxt = torch.nextafter(v, torch.tensor([math.inf], dtype=dtype))
    assert float(upper_cell_edge(v)) == float(lower_cell_edge(nxt))
    assert float(lower_cell_edge(v)) < float(v.double()) < float(upper_cell_edge(v))


def _bh_brute_force(p, alpha):
    m = len(p)
    ranked = sorted(p)
    k = max((i for i in range(1, m + 1) if ranked[i - 1] <= alpha * i / m), default=0)
    return {i for i, value in enumerate(p) if k and value <= ranked[k - 1]}


@settings(max_examples=80, deadline=None)
@given(p=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=40),
       alpha=st.sampled_from([0.001, 0.01, 0.05, 0.2]))
def test_benjamini_hochberg_rejects_exactly_the_step_up_set(p, alpha):
    adjusted = benjamini_hochberg(p)
    assert {i for i, a in enumerate(adjusted) if a <= alpha} == _bh_brute_force(p, alpha)
    assert all(a >= v * (1 - 1e-12) for a, v in zip(adjusted, p))  # p * m / rank may round down by 1 ulp


def test_binomial_tail_matches_a_direct_sum():
    direct = sum(math.comb(20, k) * 0.1**k * 0.9 ** (20 - k) for k in range(5, 21))
    assert math.isclose(binomial_tail(5, 20, 0.1), direct, rel_tol=1e-9)
    assert binomial_tail(0, 20, 0.1) == 1.0
