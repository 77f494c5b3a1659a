"""The compiled box kernels give the registry's scanning boxes bit for bit (the registry, ``scan_box``, is the
oracle), and so the scan's tallies and findings are unchanged."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.kernel_boxes import has_kernel, kernel_scan_box
from compsec.scan.scan_boxes import scan_box
from compsec.scan.tensor_plan import start_tensor

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DEFAULT = ScanConfig().format_names()  # the K-quants where llama-cpp-python is installed
_BITS = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(_BITS[t.dtype])


def _same_box(fmt, w: torch.Tensor) -> None:
    ref, got = scan_box(fmt, w), kernel_scan_box(fmt, w)
    assert got.lo.dtype == ref.lo.dtype == w.dtype and got.lo.shape == w.shape
    for name, a, b in (("lo", got.lo, ref.lo), ("hi", got.hi, ref.hi)):
        differ = (_bits(a) != _bits(b)).reshape(-1)
        assert not bool(differ.any()), (fmt.name, name, int(differ.sum()), w.reshape(-1)[differ][:3].tolist(),
                                        a.reshape(-1)[differ][:3].tolist(), b.reshape(-1)[differ][:3].tolist())


def test_every_default_format_has_a_kernel():
    assert all(has_kernel(formats.get(name)) for name in DEFAULT)
    assert {"int8", "nf4", "fp4", "q4_0", "q8_0"} <= set(DEFAULT)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(DEFAULT), dtype=st.sampled_from(DTYPES), rows=st.integers(1, 5),
       blocks=st.integers(1, 2), tail=st.sampled_from([0, 0, 7, 40]), moved=st.sampled_from([0.0, 0.3]),
       kind=st.sampled_from(["gaussian", "laplace"]), scale=st.sampled_from([1e-30, 1e-6, 1e-2, 1.0, 300.0]),
       zero_block=st.booleans(), ties=st.booleans(), seed=st.integers(0, 2**16))
def test_kernel_box_is_the_registry_box(name, dtype, rows, blocks, tail, moved, kind, scale, zero_block, ties,
                                        seed):
    """Every default format, fp32/fp16/bf16, flat tails shorter than a block, weights moved onto their edges,
    tiny (subnormal) to large magnitudes, all-zero blocks, ties of the block abs-max."""
    fmt, gen = formats.get(name), torch.Generator().manual_seed(seed)
    shape = (rows, 256 * blocks + tail)
    assume(fmt.supports(shape))
    w = (synthetic.benign(shape, kind, torch.float32, gen) * scale / 0.02).to(dtype)
    if zero_block:
        w[0, :64] = 0.0
        w[-1, -32:] = -0.0
    if ties:
        w[:, 3] = w[:, :32].abs().amax(dim=1)
        w[:, 40] = -w[:, 32:64].abs().amax(dim=1)
    if moved:
        w = synthetic.pgd_repaired(w, fmt, moved, gen)
    _same_box(fmt, w)


@pytest.mark.parametrize("name", ["nf4", "int8", "q8_0", "q4_0"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_as_the_registry_does(name, bad):
    w = torch.randn(2, 256)
    w[1, 5] = bad
    fmt = formats.get(name)
    with pytest.raises(ValueError) as ref:
        scan_box(fmt, w)
    with pytest.raises(ValueError) as got:
        kernel_scan_box(fmt, w)
    assert str(got.value) == str(ref.value)


def test_int8_float16_overflow_is_refused_as_the_registry_does():
    w = torch.randn(2, 64)
    w[0, 0] = 70000.0
    with pytest.raises(ValueError, match="float16"):
        kernel_scan_box(formats.get("int8"), w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scan_findings_unchanged_with_the_kernel_boxes(dtype):
    """The whole tensor scan (tallies of every default format, findings; two chunks) with registry boxes, kernel
    boxes, and kernel boxes with the formats counted on 2 threads."""
    gen = torch.Generator().manual_seed(3)
    w = synthetic.benign((16, 512), "gaussian", dtype, gen)
    w = synthetic.pgd_repaired(w, formats.get("nf4"), 0.3, gen)
    cfg = ScanConfig()
    out = []
    for box, workers in ((scan_box, 1), (kernel_scan_box, 1), (kernel_scan_box, 2)):
        scan, _ = start_tensor("w", w, tuple(w.shape), [formats.get(n) for n in cfg.format_names()], [], cfg)
        scan.box, scan.workers = box, workers
        scan.add(w[:8])
        scan.add(w[8:])
        out.append(([(e.format, e.detector, e.score, e.p_value, e.effect_ok) for e in scan.evidence()],
                    {k: (t.weights, t.edge_hits, t.edge_trials, t.outer, t.spike_counts.tolist())
                     for k, t in scan.tallies.items()}))
    assert out[0] == out[1] == out[2]
    assert any(flag for *_, flag in out[1][0])  # the moved weights are found, so the comparison has teeth


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DEFAULT)
def test_kernel_box_on_a_larger_tensor(name, dtype):
    """32k weights per case: rare ties (an edge exactly on a rounding boundary) show up at this size (they caught
    torch's ``127.0 / absmax``, which multiplies by the reciprocal, differing from IEEE division)."""
    w = synthetic.benign((32, 1024), "gaussian", dtype, torch.Generator().manual_seed(7))
    _same_box(formats.get(name), w)


def test_every_kernel_is_cached_on_disk():
    """``cache=True`` on every compiled function of the box kernels, so a process loads them instead of compiling
    (~45 s on a loaded 2-core machine; ``bench/bench_scan_speed.py`` reports the first-use cost)."""
    from numba.core.registry import CPUDispatcher

    from compsec.scan import box_kernels_bnb, box_kernels_gguf, float32_search

    kernels = [obj for module in (box_kernels_bnb, box_kernels_gguf, float32_search) for obj in vars(module).values()
               if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__]
    assert len(kernels) >= 12
    assert [k.__name__ for k in kernels if type(k._cache).__name__ == "NullCache"] == []
