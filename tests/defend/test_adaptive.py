"""The adaptive attacker's shrunk box: inside the exact box, keeps the injected weights, k sigma from each edge."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.defend.adaptive import ShrunkBox


@dataclass
class _Exact:
    """The part of AttackBox that ShrunkBox uses: one exact box per name and the storage dtype."""

    boxes: dict
    storage: torch.dtype = torch.float32

    @property
    def parts(self):
        return self.boxes

    def box(self, name, device="cpu", dtype=torch.float32):
        return self.boxes[name]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), margin_scale=st.floats(0.0, 3.0), name=st.sampled_from(["nf4", "int8"]))
def test_shrunk_box_is_inside_the_exact_box_and_keeps_the_anchor(seed, margin_scale, name):
    fmt = formats.get(name)
    w = torch.randn(16, 128, generator=torch.Generator().manual_seed(seed)) * 0.05
    exact = fmt.preimage(w)
    margin = margin_scale * float((exact.width[~exact.pinned] / 2).median())
    shrunk = ShrunkBox(_Exact({"w": exact}), {"w": margin}, {"w": w}).box("w")
    assert shrunk.contains(w) and bool((shrunk.lo >= exact.lo).all()) and bool((shrunk.hi <= exact.hi).all())
    lo_room, hi_room = shrunk.lo - exact.lo, exact.hi - shrunk.hi
    moved = shrunk.lo < w                                  # where the lower edge was not collapsed onto w
    slack = 1e-6 * exact.lo.abs().maximum(exact.hi.abs())  # float32 rounding of lo + margin
    assert bool((lo_room >= margin - slack)[moved].all())
    assert bool((hi_room >= margin - slack)[shrunk.hi > w].all())
    assert fmt.quantize(shrunk.lo).same_as(fmt.quantize(w)) and fmt.quantize(shrunk.hi).same_as(fmt.quantize(w))
