"""The edge-depletion and wide edge-band tests: adaptive attackers repairing inside boxes shrunk away from the edges
(fixed or random margins) are flagged; benign weights (every storage dtype) are not."""

import pytest
import torch

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.edge_band import edge_band_test
from compsec.scan.edge_mass import edge_mass_test
from compsec.scan.tensor_plan import scan_batch

CFG = ScanConfig()


def _depletion(w, fmt):
    box = fmt.preimage(w)
    return edge_mass_test(w, box.lo, box.hi, CFG.eps)


@pytest.mark.parametrize("name", ["nf4", "int8", "q4_0"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_benign_edges_are_not_depleted(name, dtype):
    gen = torch.Generator().manual_seed(21)
    for dist in ("gaussian", "laplace"):
        r = _depletion(synthetic.benign((16, 512), dist, dtype, gen), formats.get(name))
        assert r.edge_ratio > CFG.max_edge_ratio
        assert r.depletion_p is None or r.depletion_p > 1e-4


@pytest.mark.parametrize("name", ["nf4", "q4_0"])
@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_shrunk_repair_is_depleted(name, fraction):
    fmt = formats.get(name)
    w = synthetic.benign((16, 512), "gaussian", torch.float32, torch.Generator().manual_seed(22))
    attacked = synthetic.shrunk_repaired(w, fmt, fraction, torch.Generator().manual_seed(23))
    assert torch.equal(fmt.quantize(attacked).codes, fmt.quantize(w).codes)
    r = _depletion(attacked, fmt)
    assert r.edge_ratio < CFG.max_edge_ratio and r.depletion_p < 1e-6
    assert r.odds_ratio < CFG.min_odds_ratio  # the excess test alone misses it


def test_scan_reports_depletion_as_suspicious_evidence():
    fmt = formats.get("nf4")
    w = synthetic.benign((16, 512), "gaussian", torch.float32, torch.Generator().manual_seed(24))
    attacked = synthetic.shrunk_repaired(w, fmt, 0.1, torch.Generator().manual_seed(25))
    evidence, _ = scan_batch([("t", attacked, False)], [fmt], [], CFG)
    hits = [e for e in evidence if e.detector == "edge-depletion"]
    assert len(hits) == 1 and hits[0].effect_ok and hits[0].p_value < 1e-6
    clean, _ = scan_batch([("t", w, False)], [fmt], [], CFG)
    assert not [e for e in clean if e.detector == "edge-depletion" and e.effect_ok]


@pytest.mark.parametrize("name", ["nf4", "int8", "q4_0"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_benign_outer_band_is_not_crowded(name, dtype):
    gen = torch.Generator().manual_seed(26)
    fmt = formats.get(name)
    for dist in ("gaussian", "laplace"):
        w = synthetic.benign((16, 512), dist, dtype, gen)
        box = fmt.preimage(w)
        assert edge_band_test(w, box.lo, box.hi).ratio < CFG.min_band_ratio


@pytest.mark.parametrize("name", ["nf4", "q4_0"])
def test_randomised_shrink_crowds_the_outer_band(name):
    """20 % of the weights spread uniformly within 20 % of an edge (random margins), none pressed on it."""
    fmt = formats.get(name)
    w = synthetic.benign((16, 512), "gaussian", torch.float32, torch.Generator().manual_seed(27))
    attacked = synthetic.pgd_repaired(w, fmt, 0.2, torch.Generator().manual_seed(28), eps=0.2)
    box = fmt.preimage(attacked)
    band = edge_band_test(attacked, box.lo, box.hi)
    assert band.ratio >= CFG.min_band_ratio and band.p_value < 1e-6
    r = edge_mass_test(attacked, box.lo, box.hi, CFG.eps)
    assert r.odds_ratio < CFG.min_odds_ratio and r.edge_ratio > CFG.max_edge_ratio  # the 1 % tests miss it
