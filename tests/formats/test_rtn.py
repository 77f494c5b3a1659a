"""Round-to-nearest formats (optimum-quanto arithmetic): golden codes, ties, native-dtype variants, box details.

Registry-wide properties of the registered ``int*-rtn`` formats are in ``test_contract.py``; this file covers the
quanto-specific arithmetic and the unregistered ``native=True`` variants (float16/bfloat16 arithmetic).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import compsec.formats.rtn  # noqa: F401  (registers the formats)
from compsec import formats
from compsec.formats.rtn import RoundToNearest

from .conftest import MAX_EXAMPLES, random_weights

NATIVE = [RoundToNearest("int8-native", 8, None, native=True), RoundToNearest("int4-native", 4, 128, native=True),
          RoundToNearest("int3-native", 3, 64, native=True), RoundToNearest("int2-native", 2, 64, native=True)]


def test_int8_golden_codes_round_half_to_even():
    w = torch.zeros(2, 64)
    w[0, :6] = torch.tensor([127.0, -63.5, 0.5, 2.5, -1.5, 126.5])   # amax 127 -> scale 1.0
    w[1, 0] = -2.54                                                  # row 1: scale 0.02
    fmt = formats.get("int8-rtn")
    for q in (fmt.quantize(w), fmt.reference_quantize(w)):
        assert q.codes[0, :6].tolist() == [127, -64, 0, 2, -2, 126]  # torch.round: ties to even
        assert q.scales["scale"][0].item() == 1.0 and q.codes[1, 0].item() == -127
        assert q.codes.dtype == torch.int8


def test_int2_golden_codes_scale_and_shift():
    w = torch.zeros(2, 64)
    w[:, :6] = torch.tensor([0.0, 3.0, 1.5, 0.5, 2.5, 1.49])        # min 0, max 3 -> scale 1, shift -0
    fmt = formats.get("int2-rtn")
    for q in (fmt.quantize(w), fmt.reference_quantize(w)):
        assert q.codes[0, :6].tolist() == [0, 3, 2, 0, 2, 1]
        assert q.scales["scale"][0].item() == 1.0 and q.scales["shift"][0].item() == 0.0
    assert fmt.quantize(w).same_as(fmt.reference_quantize(w))


def test_registered_formats_and_group_sizes():
    assert {"int8-rtn", "int4-rtn", "int3-rtn", "int2-rtn"} <= set(formats.names())
    assert formats.get("int4-rtn").group == 128 and formats.get("int2-rtn").group == 64
    assert not formats.get("int4-rtn").supports((4, 96)) and formats.get("int4-rtn").supports((4, 256))


@pytest.mark.parametrize("native", NATIVE, ids=lambda f: f.name)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_native_variants_match_quanto_in_the_weight_dtype(native, dtype):
    fmt = native
    for seed, scale in ((0, 0.05), (1, 3.0)):
        w = random_weights((4, 256), dtype, seed=seed, scale=scale)
        ours, ref = fmt.quantize(w), fmt.reference_quantize(w)
        assert ours.same_as(ref), ours.mismatch(ref)
        assert ours.scales["scale"].dtype == dtype


@pytest.mark.parametrize("native", NATIVE, ids=lambda f: f.name)
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_native_box_is_sound_and_tight_in_low_precision(native, seed, dtype):
    fmt = native
    w = random_weights((2, 128), dtype, seed=seed)
    box, want = fmt.preimage(w), fmt.reference_quantize(w)
    assert box.lo.dtype == dtype and box.contains(w)
    mix = torch.where(torch.rand(w.shape, generator=torch.Generator().manual_seed(seed)) < 0.5, box.lo, box.hi)
    for point in (box.lo, box.hi, mix):
        assert fmt.reference_quantize(point).same_as(want)
    i = int(torch.nonzero(~box.pinned.reshape(-1))[0])
    for edge, up in ((box.hi, True), (box.lo, False)):
        moved = w.clone()
        moved.view(-1)[i] = torch.nextafter(edge.view(-1)[i], torch.tensor(float("inf") if up else -1e30, dtype=dtype))
        assert not fmt.reference_quantize(moved).same_as(want)


def test_affine_lower_edge_is_the_group_minimum_and_stepping_below_changes_shift():
    fmt = formats.get("int4-rtn")
    w = random_weights((2, 128), torch.float32, seed=9)
    w[:, 0], w[:, 1], w[:, 2] = -1.0, -0.99, 1.0      # min, a code-0 neighbour, max
    box, q = fmt.preimage(w), fmt.quantize(w)
    at_min = (box.lo == -q.scales["shift"]) & ~box.pinned
    assert bool(at_min.any())
    i = int(torch.nonzero(at_min.reshape(-1))[0])
    moved = w.clone()
    moved.view(-1)[i] = torch.nextafter(box.lo.view(-1)[i], torch.tensor(float("-inf")))
    assert not torch.equal(fmt.reference_quantize(moved).scales["shift"], q.scales["shift"])


def test_zero_minimum_pins_every_code_zero_element():
    fmt = formats.get("int2-rtn")
    w = torch.rand(2, 64, generator=torch.Generator().manual_seed(1))
    w[:, 0] = 0.0
    w[:, 1] = 0.01                                 # code 0 but above the minimum 0
    box = fmt.preimage(w)
    assert bool(box.pinned[:, 1].all())            # a zero minimum cannot be told from its code-0 neighbours


def test_zero_row_is_fully_pinned():
    w = random_weights((4, 64), torch.float32, seed=3)
    w[2] = 0.0
    box = formats.get("int8-rtn").preimage(w)
    assert bool(box.pinned[2].all()) and not bool(box.pinned[0].all())
