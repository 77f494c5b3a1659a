"""The single-pass tally kernel gives the torch reference's tallies (``edge_tally``): the same counts and position
histogram exactly, expectations to 1e-6 (the reference rounds the uniform-grid edge:adjacent probability to
float32; the kernel keeps float64)."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.scan_boxes import scan_box
from compsec.scan.tally import EdgeTally, edge_tally
from compsec.scan.tally_kernel import single_pass_tally

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DEFAULT = ScanConfig().format_names()  # the K-quants where llama-cpp-python is installed
COUNTS = ("weights", "edge_trials", "edge_hits", "edge_all", "outer")
SUMS = ("edge_expected", "edge_variance", "edge_all_expected", "edge_all_variance", "outer_expected",
        "outer_variance")


def _same(fast: EdgeTally, ref: EdgeTally) -> None:
    assert {k: getattr(fast, k) for k in COUNTS} == {k: getattr(ref, k) for k in COUNTS}
    for key in SUMS:
        assert getattr(fast, key) == pytest.approx(getattr(ref, key), rel=1e-6, abs=1e-9), key
    assert fast.spike_counts.tolist() == ref.spike_counts.tolist()
    assert fast.rows.shape == ref.rows.shape
    assert fast.rows[:, :2].tolist() == ref.rows[:, :2].tolist()  # per-row hits and trials: counts
    assert torch.allclose(fast.rows[:, 2], ref.rows[:, 2], rtol=1e-6, atol=1e-9)


def test_every_default_format_is_checked():
    assert {"int8", "nf4", "fp4", "q4_0", "q8_0"} <= set(DEFAULT)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(DEFAULT), dtype=st.sampled_from(DTYPES), rows=st.integers(1, 9),
       blocks=st.integers(1, 3), tail=st.sampled_from([0, 0, 7, 40]), moved=st.sampled_from([0.0, 0.3]),
       kind=st.sampled_from(["gaussian", "laplace"]), seed=st.integers(0, 2**16))
def test_kernel_matches_reference_on_format_boxes(name, dtype, rows, blocks, tail, moved, kind, seed):
    """Boxes of every default format, benign or PGD-moved weights, odd shapes, flat tails shorter than a block."""
    fmt, gen = formats.get(name), torch.Generator().manual_seed(seed)
    shape = (rows, 256 * blocks + tail)
    assume(fmt.supports(shape))
    w = synthetic.benign(shape, kind, dtype, gen)
    if moved:
        w = synthetic.pgd_repaired(w, fmt, moved, gen)
    box = scan_box(fmt, w)
    _same(single_pass_tally(w, box.lo, box.hi, 0.01), edge_tally(w, box.lo, box.hi, 0.01))


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16), magnitude=st.sampled_from([1e-6, 1e-3, 1.0, 300.0]),
       eps=st.sampled_from([0.01, 0.05]))
def test_kernel_matches_reference_on_arbitrary_intervals(dtype, seed, magnitude, eps):
    """Intervals of any width (one grid step to many binades, straddling zero, subnormal, pinned, infinite):
    every branch of the kernel (uniform grid, fine grid, exact masses) against the reference."""
    gen = torch.Generator().manual_seed(seed)
    ends = (torch.randn(2, 4, 300, generator=gen, dtype=torch.float64) * magnitude).to(dtype)
    lo, hi = ends.min(0).values, ends.max(0).values
    hi[0, :20] = lo[0, :20]  # pinned
    lo[1, :5] = float("-inf")  # non-finite
    t = torch.rand(lo.shape, generator=gen, dtype=torch.float64)
    t[2, :50] = 0.0  # on the lower edge
    w = (lo.double() + t * (hi.double() - lo.double())).to(dtype)
    w = torch.minimum(torch.maximum(w, lo), hi)
    w[1, :5] = hi[1, :5]
    _same(single_pass_tally(w, lo, hi, eps), edge_tally(w, lo, hi, eps))


def test_empty_and_fully_pinned_tensors():
    w = torch.ones(3, 0, dtype=torch.float16)
    assert single_pass_tally(w, w, w, 0.01).rows.shape == (3, 3)
    w = torch.ones(2, 4)
    assert single_pass_tally(w, w, w, 0.01).weights == 0


@pytest.mark.parametrize("moved", [0.0, 0.3])
def test_scan_evidence_is_the_same_with_either_tally(moved):
    """A tensor scanned for every default format gives the same evidence (tests, effects, p-values) with the
    kernel as with the torch reference tally."""
    from compsec.scan.tensor_plan import start_tensor

    cfg, gen = ScanConfig(), torch.Generator().manual_seed(5)
    w = synthetic.benign((16, 512), "gaussian", torch.float16, gen)
    if moved:
        w = synthetic.pgd_repaired(w, formats.get("nf4"), moved, gen)
    found = []
    for tally in (single_pass_tally, edge_tally):
        scan, _ = start_tensor("w", w, tuple(w.shape), [formats.get(n) for n in DEFAULT], [], cfg)
        scan.tally = tally
        scan.add(w)
        found.append(scan.evidence())
    fast, ref = found
    assert [(e.format, e.detector, e.effect_ok) for e in fast] == [(e.format, e.detector, e.effect_ok) for e in ref]
    for a, b in zip(fast, ref):
        assert a.score == pytest.approx(b.score, rel=1e-6)
        assert (a.p_value is None) == (b.p_value is None)
        if a.p_value is not None:
            assert a.p_value == pytest.approx(b.p_value, rel=1e-4, abs=1e-300)
