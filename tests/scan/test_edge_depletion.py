"""The edge-depletion test: an attacker repairing inside boxes shrunk away from the edges empties the edge band;
benign weights (every storage dtype) do not."""

import pytest
import torch

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.edge_mass import edge_mass_test
from compsec.scan.tensor_scan import scan_batch

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
