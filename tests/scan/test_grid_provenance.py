"""Grid provenance: dequantize(quantize(w)) is reported as derived from a quantized checkpoint, benign weights
are not, and the scan does not call grid-derived weights tampered."""

import pytest
import torch

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.grid_provenance import grid_provenance, low_cardinality_fraction
from compsec.scan.tensor_plan import scan_batch

ALL = [formats.get(name) for name in formats.names()]
BASE = [fmt for fmt in ALL if "-b" not in fmt.name]  # the -b128/-b256 variants share their base's grid


# K-quant scales come from a search over the weights, so re-quantizing dequantized q5_k weights rounded to bf16
# finds another grid 37 % of the time, and no other format recognises them: a known gap, not a pass.
KNOWN_GAPS = {("q5_k", torch.bfloat16)}
CASES = [pytest.param(fmt, dtype, marks=pytest.mark.xfail(strict=True, reason="searched K-quant scales, bf16")
                      if (fmt.name, dtype) in KNOWN_GAPS else ())
         for dtype in (torch.float32, torch.float16, torch.bfloat16) for fmt in BASE]


@pytest.mark.parametrize(("fmt", "dtype"), CASES, ids=lambda x: getattr(x, "name", str(x)))
def test_grid_derived_weights_are_recognised(fmt, dtype):
    w = synthetic.benign((8, 512), "gaussian", dtype, torch.Generator().manual_seed(3))
    origin = grid_provenance(synthetic.grid_derived(w, fmt), ALL)
    assert origin is not None and origin.fraction >= 0.9


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_benign_weights_have_no_provenance(dtype, dist):
    gen = torch.Generator().manual_seed(4)
    for _ in range(5):
        assert grid_provenance(synthetic.benign((8, 512), dist, dtype, gen), ALL) is None


def test_unknown_4bit_grid_is_caught_by_low_cardinality():
    gen = torch.Generator().manual_seed(5)
    levels = torch.linspace(-1, 1, 15)
    w = (levels[torch.randint(0, 15, (8, 512), generator=gen)] * 0.01).to(torch.bfloat16)
    assert low_cardinality_fraction(w) == 1.0
    origin = grid_provenance(w, [])
    assert origin is not None and origin.source.startswith("<=")


def test_grid_derived_tensor_is_information_not_tampering():
    name = "q4_1" if "q4_1" in formats.names() else BASE[0].name
    w = synthetic.benign((8, 512), "gaussian", torch.bfloat16, torch.Generator().manual_seed(6))
    rows = synthetic.grid_derived(w, formats.get(name))
    checked = [formats.get(n) for n in ScanConfig().format_names()]
    evidence, info = scan_batch([("t", rows, False)], checked, ALL, ScanConfig())
    assert [f.detector for f in info] == ["grid-provenance"] and info[0].severity == "info"
    assert not [e for e in evidence if e.detector == "edge-mass"]
