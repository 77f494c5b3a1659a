"""Position spike: benign tensors (every default format, storage dtype, distribution) raise no alarm; weights
clamped at one interior position (an adaptive attacker's shrunk edge) do; degenerate inputs are handled."""

import pytest
import torch

from compsec import formats
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.position_spike import BINS, folded_counts, position_spike_test
from compsec.scan.scan_boxes import batched_boxes, fixed_scale

CFG = ScanConfig()
CHECKED = CFG.format_names()
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _flagged(r) -> bool:
    return r.p_value is not None and r.p_value <= CFG.alpha and r.ratio >= CFG.min_spike_ratio


@pytest.mark.parametrize("name", CHECKED)
def test_benign_tensors_have_no_spike(name):
    fmt, gen = formats.get(name), torch.Generator().manual_seed(31)
    tensors = [synthetic.benign((8, 512), dist, dtype, gen) for dtype in DTYPES for dist in ("gaussian", "laplace")
               for _ in range(2)]
    results = [position_spike_test(w, lo, hi, CFG.min_spike_ratio)
               for w, (lo, hi) in zip(tensors, batched_boxes(fmt, tensors))]
    assert not [r for r in results if _flagged(r)], results
    fp32 = [r for r, w in zip(results, tensors) if w.dtype == torch.float32]
    assert all(r.p_value is not None and r.ratio < 2.5 for r in fp32)


@pytest.mark.parametrize("name", [n for n in CHECKED if not fixed_scale(formats.get(n))])
@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_weights_clamped_on_a_shrunk_edge_make_a_spike(name, fraction):
    fmt = formats.get(name)
    w = synthetic.benign((8, 512), "gaussian", torch.float32, torch.Generator().manual_seed(33))
    attacked = synthetic.shrunk_repaired(w, fmt, fraction, torch.Generator().manual_seed(34))
    (lo, hi), = batched_boxes(fmt, [attacked])
    r = position_spike_test(attacked, lo, hi, CFG.min_spike_ratio)
    assert _flagged(r), r
    assert abs(r.position - fraction) <= 1.5 / BINS


def test_coarse_grids_and_pinned_weights_are_not_counted():
    w = torch.linspace(0.5, 1, 4096).reshape(8, 512)
    assert int(folded_counts(w, w, w).sum()) == 0                      # pinned
    lo, hi = w - 1e-6, w + 1e-6                                        # a few float32 grid values per interval
    assert int(folded_counts(w, lo, hi).sum()) == 0
    r = position_spike_test(w, lo, hi)
    assert r.p_value is None and r.counted == 0
