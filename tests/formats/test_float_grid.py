"""``furthest_true``: guessed edges are verified, so any guess (exact, off by many ulps, NaN, past the stop)
gives the same edge as plain bisection, and the edge is exact (holds there, fails one float further)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.formats.float_grid import furthest_true, next_float

from .conftest import MAX_EXAMPLES


def _threshold_pred(inv: torch.Tensor, limit: torch.Tensor):
    """``fl(fl(x * inv) + 8.5) < limit``: a Q4_0-like code test, monotone in ``x`` for ``inv > 0``."""

    def pred(x: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:
        i, lim = (inv, limit) if sel is None else (inv[sel], limit[sel])
        return x * i + torch.tensor(8.5) < lim

    return pred


@settings(max_examples=MAX_EXAMPLES * 3, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), off=st.sampled_from([0, 1, 2, 3, 40, 10**6]),
       kind=st.sampled_from(["near", "nan", "inf", "none"]))
def test_guessed_edges_equal_bisection_and_are_exact(seed, off, kind):
    gen = torch.Generator().manual_seed(seed)
    n = 257
    inv = torch.rand(n, generator=gen) * 300 + 1e-3
    limit = torch.randint(9, 17, (n,), generator=gen).float()
    start = torch.zeros(n)
    stop = torch.full((n,), 1.0)
    pred = _threshold_pred(inv, limit)
    want = furthest_true(pred, start, stop)
    guess = {"near": ((limit - 8.5) / inv).float(), "nan": torch.full((n,), float("nan")),
             "inf": torch.full((n,), float("inf")), "none": None}[kind]
    if guess is not None and kind == "near":
        sign = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
        for _ in range(off % 50):
            guess = torch.where(sign > 0, next_float(guess, up=True), next_float(guess, up=False))
        guess = guess * (1 + off // 50 * 1e-3)
    got = furthest_true(pred, start, stop, guess)
    assert torch.equal(got, want)
    assert bool(pred(got, None).all())
    inner = got < stop
    assert not bool(pred(next_float(got, up=True), None)[inner].any())


def test_edges_towards_negative_stop_and_at_the_stop():
    inv = torch.tensor([2.0, 3.0, 1e-6])
    pred = lambda x, sel: (x * (inv if sel is None else inv[sel])) > -1.0
    start, stop = torch.zeros(3), torch.full((3,), -1.0)
    got = furthest_true(pred, start, stop, torch.tensor([-0.5, 0.0, -5.0]))
    assert torch.equal(got, furthest_true(pred, start, stop))
    assert got[2] == -1.0 and bool(pred(got, None).all())
    assert not bool(pred(next_float(got[:2], up=False), torch.tensor([0, 1])).any())
