"""Statistics against hand computations: Wilson intervals, exact McNemar, flips."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compsec.audit.stats import mcnemar_exact, paired_flips, rate, wilson_interval


def test_wilson_matches_hand_computation():
    # 8/10, z = 1.96: centre = (0.8 + 0.19208) / 1.38416 = 0.71676; half = 1.96 * sqrt(0.016 + 0.0009604) / 1.38416
    lo, hi = wilson_interval(8, 10, z=1.96)
    centre, half = (0.8 + 1.96**2 / 20) / (1 + 1.96**2 / 10), 1.96 * math.sqrt(0.016 + 1.96**2 / 400) / (
        1 + 1.96**2 / 10)
    assert lo == pytest.approx(centre - half) and hi == pytest.approx(centre + half)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_contains_the_estimate(k, n):
    k = min(k, n)
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)


def test_mcnemar_exact_hand_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)           # 2 * (1/2)^6
    assert mcnemar_exact(5, 1) == pytest.approx(2 * 7 / 64)       # 2 * (C(6,0)+C(6,1)) / 2^6
    assert mcnemar_exact(1, 5) == mcnemar_exact(5, 1)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)


def test_mcnemar_agrees_with_scipy_binomtest():
    scipy_stats = pytest.importorskip("scipy.stats")
    for b, c in [(7, 2), (15, 4), (0, 9), (30, 31)]:
        expected = scipy_stats.binomtest(b, b + c, 0.5).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)


def test_paired_flips_only_counts_probes_judged_in_both():
    original = {"a": True, "b": True, "c": False, "d": True}
    variant = {"a": False, "b": True, "c": True, "e": False}
    flips = paired_flips(original, variant)
    assert flips.refused_to_complied == ["a"] and flips.complied_to_refused == ["c"]
    assert flips.paired == 3 and flips.mcnemar_p == 1.0


def test_rate_reports_interval_and_counts():
    assert rate(0, 0)["rate"] is None
    r = rate(3, 4)
    assert r["rate"] == 0.75 and r["k"] == 3 and r["n"] == 4 and r["lo"] < 0.75 < r["hi"]
