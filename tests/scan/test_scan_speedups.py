"""The scan's shortcuts change no result: joined provenance probes, the prefilter, scipy.special tails; and the
fractional-shrink adaptive attacker's boxes."""

import pytest
import torch

from compsec import formats
from compsec.attack.adaptive_shrink import fraction_margins
from compsec.defend.adaptive import ShrunkBox
from compsec.errors import InputError
from compsec.formats.base import Box
from compsec.scan import synthetic
from compsec.scan.blocks import joint_length
from compsec.scan.grid_provenance import (
    MATCH_THRESHOLD,
    grid_provenance_batch,
    match_fractions,
    probe_of,
    requantization_match,
)
from compsec.scan.null import binomial_tail, normal_tail

ALL = [formats.get(name) for name in formats.names()]


def _mixed_tensors() -> list[torch.Tensor]:
    """Benign and grid-derived tensors of several row lengths and storage dtypes."""
    gen = torch.Generator().manual_seed(11)
    out = []
    for shape, dtype, source in [((4, 512), torch.float16, None), ((3, 768), torch.bfloat16, "q4_1"),
                                 ((2, 1024), torch.float32, "q8_0"), ((4, 256), torch.bfloat16, None),
                                 ((4, 512), torch.float16, "nf4"), ((2, 768), torch.float32, "q5_0")]:
        w = synthetic.benign(shape, "gaussian", dtype, gen)
        out.append(w if source is None else synthetic.grid_derived(w, formats.get(source)))
    return out


@pytest.mark.parametrize("name", ["nf4", "fp4", "int8", "q4_0", "q5_1", "q8_0", "int4-rtn", "q4_k"])
def test_joined_probes_match_one_call_per_probe(name):
    fmt = formats.get(name)
    probes = [probe_of(w) for w in _mixed_tensors()]
    joined = match_fractions(probes, fmt)
    assert joined == pytest.approx([requantization_match(p, fmt) for p in probes], abs=1e-12)


def test_batched_provenance_equals_trying_every_format_in_order():
    tensors = _mixed_tensors()[:4]
    found = grid_provenance_batch(tensors, [ALL] * len(tensors))
    for w, origin in zip(tensors, found):
        expected = next((f.name for f in ALL if requantization_match(probe_of(w), f) >= MATCH_THRESHOLD), None)
        assert (origin.source if origin else None) == expected
    assert [bool(o) for o in found] == [False, True, True, False]


def test_joint_lengths():
    assert joint_length(formats.get("nf4-dq"), 512) is None and joint_length(formats.get("hqq"), 512) is None
    assert joint_length(formats.get("q4_k"), 512) == 256 and joint_length(formats.get("q4_0"), 512) == 32
    assert joint_length(formats.get("int8"), 300) == 300
    assert joint_length(formats.get("nf4"), 100) is None  # flat 64-blocks straddle rows of 100


def test_tails_agree_with_scipy_stats():
    from scipy.stats import binom, norm

    for z in (0.0, 2.5, 12.0, 35.0):
        assert normal_tail(z) == pytest.approx(float(norm.sf(z)), rel=1e-9)
    for k, n, p in ((0, 10, 0.1), (5, 100, 0.01), (60, 1000, 0.001), (11, 10, 0.5)):
        assert binomial_tail(k, n, p) == pytest.approx(float(binom.sf(k - 1, n, p)) if k <= n else 0.0,
                                                      rel=1e-9, abs=1e-300)


class _StubBox:
    """The part of AttackBox that ShrunkBox and fraction_margins use."""

    storage = torch.float32

    def __init__(self, lo, hi):
        self.parts = {"w": None}
        self._box = Box(torch.tensor(lo), torch.tensor(hi))

    def box(self, name, device="cpu", dtype=torch.float32):
        return Box(self._box.lo.to(dtype), self._box.hi.to(dtype))


def test_fraction_shrink_keeps_away_from_edges_and_keeps_the_anchor():
    stub = _StubBox([0.0, -1.0, 0.5], [1.0, 1.0, 0.5])
    anchors = {"w": torch.tensor([0.5, -0.95, 0.5])}
    shrunk = ShrunkBox(stub, fraction_margins(stub, 0.1), anchors).box("w")
    assert shrunk.lo.tolist() == pytest.approx([0.1, -0.95, 0.5])  # -0.95 < -1 + 0.2: widened to the anchor
    assert shrunk.hi.tolist() == pytest.approx([0.9, 0.8, 0.5])  # pinned interval stays pinned
    with pytest.raises(InputError):
        fraction_margins(stub, 0.5)


def test_randomised_margins_lie_inside_the_band_and_vary():
    stub = _StubBox([0.0] * 1000, [1.0] * 1000)
    margins = fraction_margins(stub, 0.2, seed=3)["w"]
    assert float(margins.min()) >= 0.0 and float(margins.max()) <= 0.2
    assert float(margins.std()) > 0.03  # uniform on [0, 0.2]: std 0.058
    assert torch.equal(margins, fraction_margins(stub, 0.2, seed=3)["w"])
