"""Edge-mass detector: benign tensors stay clean across formats, storage dtypes and seeds (false-alarm rate);
PGD-repaired tensors are flagged (detection rate); degenerate inputs are handled."""

import pytest
import torch

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.edge_mass import edge_mass_test
from compsec.scan.scan_boxes import batched_boxes, fixed_scale

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
CHECKED = ScanConfig().format_names()  # the defaults whose backend is installed
# synthetic PGD repair keeps an exact format's codes; on a K-quant llama.cpp re-scales it (tests/scan/test_kquant_scan)
EXACT = [name for name in CHECKED if not fixed_scale(formats.get(name))]
SEEDS, SHAPE = 4, (8, 512)  # 4 independent 4096-weight tensors per (format, dtype, distribution)


def flagged(result, alpha=1e-3, min_odds=1.5):
    return result.p_value is not None and result.p_value <= alpha and result.odds_ratio >= min_odds


def corpus(name, dtype, dist, fraction, seed0=0, seeds=SEEDS):
    """Edge-mass results of SEEDS tensors, repaired with ``fraction`` (0 = benign), boxed in one call."""
    fmt, gen = formats.get(name), torch.Generator().manual_seed(seed0)
    tensors = [synthetic.benign(SHAPE, dist, dtype, gen) for _ in range(seeds)]
    if fraction:
        tensors = [synthetic.pgd_repaired(w, fmt, fraction, gen) for w in tensors]
    boxes = batched_boxes(fmt, tensors)
    return [edge_mass_test(w, lo, hi) for w, (lo, hi) in zip(tensors, boxes)]


def test_some_default_format_is_registered():
    assert CHECKED, "no default format registered: the scanner would check nothing"


@pytest.mark.parametrize("name", CHECKED)
def test_benign_tensors_are_clean_and_p_values_calibrated(name):
    results = [r for dtype in DTYPES for dist in ("gaussian", "laplace") for r in corpus(name, dtype, dist, 0)]
    testable = [r for r in results if r.p_value is not None]
    assert len(testable) >= len(results) // 2
    assert not [r for r in testable if flagged(r)]
    small = sum(r.p_value < 0.1 for r in testable) / len(testable)
    assert small < 0.3, f"{100 * small:.0f}% of benign p-values < 0.1: the null is miscalibrated"
    # K-quants' scale search keeps weights off their fixed-scale edges: odds down to ~0.55 in bf16 (conservative)
    floor = 0.5 if fixed_scale(formats.get(name)) else 0.6
    assert all(floor < r.odds_ratio < 1.6 for r in testable)


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pgd_repaired_tensors_are_flagged(name, dtype):
    results = corpus(name, dtype, "gaussian", 0.2, seed0=1, seeds=1)
    assert all(flagged(r) for r in results), [(r.p_value, r.odds_ratio) for r in results]
    assert all(r.edge_fraction > 0.15 for r in results)


def test_the_null_accounts_for_a_coarse_bf16_grid():
    """int8 intervals on bf16 hold only a few grid values, so ~1/3 of benign weights sit at an edge."""
    name = "int8" if "int8" in CHECKED else CHECKED[0]
    results = corpus(name, torch.bfloat16, "gaussian", 0)
    assert all(abs(r.edge_fraction - r.expected_edge_fraction) < 0.05 for r in results)
    assert not any(flagged(r) for r in results)


def test_pinned_only_and_bad_arguments():
    w = torch.ones(4, 64)
    r = edge_mass_test(w, w.clone(), w.clone())
    assert r.n_weights == 0 and r.p_value is None
    with pytest.raises(ValueError, match="eps"):
        edge_mass_test(w, w, w, eps=0.3)
    with pytest.raises(ValueError, match="storage dtype"):
        edge_mass_test(w.half(), w, w)


def test_bf16_weights_saved_as_float32_are_judged_on_the_bf16_grid():
    """Upcast bf16 weights take few values inside an 8-bit interval; that granularity is not tampering."""
    from compsec.scan.config import ScanConfig
    from compsec.scan.tensor_plan import scan_batch

    gen = torch.Generator().manual_seed(9)
    name = "int8" if "int8" in CHECKED else CHECKED[0]
    rows = synthetic.benign((8, 512), "gaussian", torch.bfloat16, gen).float()
    evidence, _ = scan_batch([("t", rows, True)], [formats.get(name)], [], ScanConfig())
    edge = [e for e in evidence if e.detector == "edge-mass"]
    assert edge and "bfloat16 grid" in edge[0].explanation
    assert not (edge[0].p_value is not None and edge[0].p_value < 1e-3 and edge[0].effect_ok)
