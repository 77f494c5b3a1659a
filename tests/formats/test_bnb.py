"""bitsandbytes-specific checks: golden bytes, the library's quirks, partial blocks, extreme scales, and the
pieces the contract suite does not reach (float keys, bit packing, the compact-box fallback)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import bitsandbytes.functional as F
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.formats.base import Box, Format, Quantized
from compsec.formats.bnb_math import NF4_TABLE
from compsec.formats.compact import pack_bits, unpack_bits
from compsec.formats.float_edges import float_from_key, float_key
from compsec.formats.half_cast import preimage_of_half

from .conftest import MAX_EXAMPLES, random_weights

BNB_NAMES = ["int8", "nf4", "fp4", "nf4-b128", "nf4-b256", "fp4-b128", "fp4-b256"]


def test_all_bitsandbytes_formats_are_registered():
    assert set(BNB_NAMES) <= set(formats.names())
    assert all(formats.get(n).family == "bnb" for n in BNB_NAMES)


def test_int8_golden_codes():
    """Row 0 has abs-max 1, so the multiplier is 127 * (1/1) = 127: 1 -> 127, -0.5 -> -63.5 -> -64 (ties go to
    even), 0.25 -> 31.75 -> 32, 0 -> 0.  Row 1 has abs-max 2, multiplier 127 * 0.5 = 63.5: 2 -> 127,
    1 -> 63.5 -> 64 (even), -1 -> -64, 0.5 -> 31.75 -> 32."""
    w = torch.tensor([[1.0, -0.5, 0.25, 0.0], [2.0, 1.0, -1.0, 0.5]])
    expected = torch.tensor([[127, -64, 32, 0], [127, 64, -64, 32]], dtype=torch.int8)
    for q in (formats.get("int8").quantize(w), formats.get("int8").reference_quantize(w)):
        assert torch.equal(q.codes, expected)
        assert torch.equal(q.scales["absmax"], torch.tensor([1.0, 2.0]))


def test_int8_quantizes_the_float16_cast_as_linear8bitlt_does():
    """``Int8Params`` casts to float16 first.  Row 0: ``1 + 2**-11`` ties between float16 1.0 and ``1 + 2**-10``
    and goes to the even 1.0, so ``SCB = 1`` and the multiplier is 127; ``0.0984251`` (``x 127 = 12.49998``,
    code 12 in float32) casts to ``0.0984497`` (``12.503``) -> 13; ``-0.5 -> -63.5 -> -64`` (even).  Row 1:
    float32 0.3 casts to ``0.300048828125``, the stored ``SCB``.  Quantizing float32 directly gives ``SCB``
    ``1.00048828125`` and codes 12, -63 instead: not what the layer stores."""
    w = torch.tensor([[1.00048828125, 0.0984251, -0.5, 0.0], [0.3, 0.15, -0.3, 0.0]])
    expected = torch.tensor([[127, 13, -64, 0], [127, 64, -127, 0]], dtype=torch.int8)
    fmt = formats.get("int8")
    for q in (fmt.quantize(w), fmt.reference_quantize(w)):
        assert torch.equal(q.codes, expected)
        assert q.scales["absmax"].tolist() == [1.0, 0.300048828125]
    direct, _, _ = F.int8_vectorwise_quant(w.clone())
    assert direct[0, 1] == 12 and direct[0, 2] == -63
    box = fmt.preimage(w)
    # code 13 holds from the float16 value 0.0984497 down to the midpoint 0.098419189453125 with its neighbour
    # 0.0983887; the neighbour's mantissa is the even one, so the tie goes down: the edge is one float above it
    midpoint = torch.tensor(0.098419189453125)
    assert box.lo[0, 1] == torch.nextafter(midpoint, torch.tensor(1.0))
    assert box.hi[0, 2].item() == -0.4998779296875          # tie with -0.4997558 goes to the even -0.5: included


def test_linear8bitlt_loaded_from_a_state_dict_stores_the_format_codes():
    """bitsandbytes' documented path: ``load_state_dict`` of float weights, quantized on ``.to(device)``."""
    from bitsandbytes.nn import Linear8bitLt

    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        w = random_weights((16, 128), dtype, seed=21)
        layer = Linear8bitLt(128, 16, bias=False, has_fp16_weights=False)
        layer.load_state_dict({"weight": w})
        layer = layer.to("cpu")
        q = formats.get("int8").quantize(w)
        assert torch.equal(layer.weight.CB, q.codes) and torch.equal(layer.weight.SCB, q.scales["absmax"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_int8_refuses_weights_that_overflow_float16(dtype):
    w = random_weights((4, 64), dtype, seed=22)
    w[1, 3] = 70000.0
    with pytest.raises(ValueError, match="float16"):
        formats.get("int8").quantize(w)
    w[1, 3] = 65280.0            # close to float16's largest (65504) is fine: its row is simply scaled by it
    assert formats.get("int8").quantize(w).same_as(formats.get("int8").reference_quantize(w))


def _nf4_golden_block() -> torch.Tensor:
    midpoint = (torch.tensor(NF4_TABLE[7]) + torch.tensor(NF4_TABLE[8])) / 2    # fp32 midpoint of codes 7 and 8
    above = torch.nextafter(midpoint, torch.tensor(1.0))
    return torch.cat([torch.tensor(NF4_TABLE), midpoint.view(1), above.view(1), torch.zeros(46)])


def test_nf4_golden_packed_bytes():
    """One 64-weight block with abs-max 1 (so the multiplier is exactly 1): the 16 code values quantize to codes
    0..15; the fp32 midpoint of codes 7 and 8 goes to the lower bucket (bucketize, right=False) -> 7; the next
    float above it -> 8; zeros -> 7.  Packed high nibble first: 01 23 45 67 89 ab cd ef 78 then 23 x 77."""
    w = _nf4_golden_block().view(1, 64)
    expected = bytes.fromhex("0123456789abcdef78" + "77" * 23)
    packed, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4")
    assert packed.reshape(-1).numpy().tobytes() == expected
    ours = formats.get("nf4").quantize(w)
    assert pack_bits(ours.codes, 4).numpy().tobytes() == expected
    assert torch.equal(ours.scales["absmax"], torch.tensor([1.0])) and torch.equal(state.absmax, ours.scales["absmax"])


def test_fp4_stores_small_positive_values_under_the_negative_zero_code():
    """bnb quirk reproduced: FP4 has +0 (code 0) and -0 (code 8) but both tables hold 0.0, so ``argsort`` puts
    code 8 above code 0 and a tiny *positive* scaled value lands on code 8, a tiny negative one on code 0."""
    w = torch.zeros(1, 64)
    w[0, :3] = torch.tensor([1.0, 1e-4, -1e-4])
    for q in (formats.get("fp4").quantize(w), formats.get("fp4").reference_quantize(w)):
        assert q.codes[0, 1].item() == 8 and q.codes[0, 2].item() == 0


@pytest.mark.parametrize("name", ["int8", "nf4", "fp4"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_dequantize_matches_library_bit_for_bit(name, dtype):
    fmt, w = formats.get(name), random_weights((8, 256), dtype, seed=1)
    q = fmt.quantize(w)
    if name == "int8":
        want = F.int8_vectorwise_dequant(q.codes, q.scales["absmax"])
    else:
        packed, state = F.quantize_4bit(w, blocksize=64, quant_type=name)
        state.dtype = torch.float32
        want = F.dequantize_4bit(packed, state)
    assert torch.equal(fmt.dequantize(q).view(torch.int32), want.view(torch.int32))


def _check_sound_and_tight(fmt: Format, w: torch.Tensor, sample: int = 40) -> Box:
    box, want = fmt.preimage(w), fmt.reference_quantize(w)
    assert fmt.quantize(w).same_as(want)
    for point in (box.lo, box.hi):
        assert fmt.reference_quantize(point).same_as(want)
    unpinned = torch.nonzero(~box.pinned.reshape(-1)).flatten()[:sample].tolist()
    for i in unpinned:
        for edge, toward in ((box.lo, float("-inf")), (box.hi, float("inf"))):
            moved = w.clone()
            moved.view(-1)[i] = torch.nextafter(edge.reshape(-1)[i], torch.tensor(toward, dtype=w.dtype))
            if bool(torch.isfinite(moved).all()):
                assert not fmt.reference_quantize(moved).same_as(want), f"element {i} is not tight"
    return box


@pytest.mark.parametrize("name", ["nf4", "fp4", "nf4-b128"])
def test_partial_last_block_is_divided_not_multiplied_and_boxed_exactly(name):
    """150 weights = 2 full blocks of 64 + a 22-weight tail that bnb scales with ``x / absmax``."""
    for dtype in (torch.float32, torch.bfloat16):
        _check_sound_and_tight(formats.get(name), random_weights((3, 50), dtype, seed=8))


@pytest.mark.parametrize("name", ["nf4", "fp4"])
@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e-40], ids=["huge", "tiny", "subnormal"])
def test_extreme_block_scales_need_float_grid_search_and_stay_exact(name, scale):
    """Far from scale 1 the algebraic edge guess is many ulps off (e.g. FP4's zero midpoint at abs-max 1e30),
    so edges come from bisection on the float grid; the box must still be sound and tight."""
    w = random_weights((4, 64), torch.float32, seed=9, scale=1.0) * scale
    _check_sound_and_tight(formats.get(name), w, sample=24)


@pytest.mark.parametrize("scale", [1e4, 1e-5, 1e-7, 1e-30], ids=["near-overflow", "subnormal16", "ties-zero", "zero16"])
def test_int8_float16_extremes_stay_exact(scale):
    """int8 sees ``w.half()``: rows near 65504 (65519 still casts to it), in float16's subnormal range (steps of
    ``2**-24``), around ``2**-25`` (ties to zero) and rows that cast to all zeros (``SCB = 0``, all pinned)."""
    w = (random_weights((4, 64), torch.float32, seed=9, scale=1.0) * scale).clamp(-65504, 65504)
    if scale == 1e4:
        w[0, 0] = 65519.0
    box = _check_sound_and_tight(formats.get("int8"), w, sample=24)
    if scale == 1e-30:
        assert bool(box.pinned.all())


def test_plain_box_is_also_exact_for_double_quantized_statistics():
    """nf4 with ``compress_statistics=True`` is not registered (its 8-bit statistics come from a C LUT kernel we
    do not reproduce), but the nf4 box pins every abs-max, so the compressed statistics cannot move inside it."""
    w = random_weights((8, 256), torch.float32, seed=12)
    box = formats.get("nf4").preimage(w)

    def nested(x):
        packed, state = F.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=True)
        return packed, state.absmax, state.offset, state.state2.absmax

    want = nested(w)
    for point in (box.lo, box.hi):
        assert all(torch.equal(a, b) for a, b in zip(nested(point), want))


@settings(max_examples=MAX_EXAMPLES * 20, deadline=None)
@given(a=st.floats(width=32, allow_nan=False), b=st.floats(width=32, allow_nan=False))
def test_float_keys_order_like_floats_and_round_trip(a, b):
    x = torch.tensor([a, b], dtype=torch.float32)
    k = float_key(x)
    assert torch.equal(float_from_key(k).view(torch.int32), x.view(torch.int32))
    if a < b:
        assert k[0] < k[1]
    if a != float("inf") and not (a == 0 and math.copysign(1.0, a) < 0):   # nextafter(-0.0) skips +0.0
        assert float_key(torch.nextafter(x[:1], torch.tensor([float("inf")])))[0] == k[0] + 1


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8], ids=str)
def test_pack_bits_round_trips(bits, dtype):
    low = -(1 << (bits - 1)) if dtype.is_signed else 0
    values = torch.randint(low, low + (1 << bits), (1001,)).to(dtype)
    packed = pack_bits(values, bits)
    assert packed.numel() == -(-1001 * bits // 8)
    assert torch.equal(unpack_bits(packed, bits, 1001, dtype), values)


@dataclass(frozen=True)
class _WithoutPinnedHook(Format):
    """nf4 seen through the bare contract (no ``box_from_pinned``): exercises the compact-box fallback."""

    name: str = "nf4-bare"
    widen: float = 0.0
    bits: int = 4

    def quantize(self, w):
        return formats.get("nf4").quantize(w)

    def reference_quantize(self, w):
        return formats.get("nf4").reference_quantize(w)

    def dequantize(self, q: Quantized):
        return formats.get("nf4").dequantize(q)

    def box_from_quantized(self, q, w):
        box = formats.get("nf4").box_from_quantized(q, w)
        return Box(box.lo - self.widen * w.float().abs(), box.hi)


def test_compact_box_fallback_stores_pinned_values_and_rebuilds_exactly():
    fmt, w = _WithoutPinnedHook(), random_weights((8, 256), torch.bfloat16, seed=13)
    compact = fmt.compact_box(w)
    assert compact.pinned_values is not None and compact.bytes_per_param < 0.75
    rebuilt, box = compact.box(), fmt.preimage(w)
    assert torch.equal(rebuilt.lo, box.lo) and torch.equal(rebuilt.hi, box.hi)


def test_compact_box_refuses_formats_whose_box_needs_more_than_pinned_weights():
    with pytest.raises(ValueError, match="box_from_pinned"):
        _WithoutPinnedHook(widen=0.5).compact_box(random_weights((8, 256), torch.float32, seed=14))


@pytest.mark.parametrize("name", ["int8", "nf4", "fp4"])
def test_compact_box_names_pinned_candidates_and_rebuilds_degenerate_blocks(name):
    """The mask covers only candidate weights (extreme codes, degenerate blocks), so it must still rebuild
    zero blocks, sub-1e-38 blocks (clamped multiplier) and rows whose ``127/a`` overflows."""
    fmt = formats.get(name)
    w = random_weights((8, 256), torch.float32, seed=15)
    w[1] = 0.0
    w[2] *= 1e-38
    w[3] *= 1e-42
    compact, box = fmt.compact_box(w), fmt.preimage(w)
    assert compact.sparse_mask
    rebuilt = compact.box()
    assert torch.equal(rebuilt.lo, box.lo) and torch.equal(rebuilt.hi, box.hi)
    plain = fmt.compact_box(random_weights((16, 512), torch.float32, seed=16))
    assert plain.bytes_per_param < (0.64 if name != "int8" else 1.02)   # nf4 fp32: 0.5 + 4/64 + 4/64 + mask


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), exponent=st.integers(-26, 14), ties=st.floats(0.0, 1.0))
def test_int8_box_through_the_float16_cast_is_exact_at_ties_under_the_layer(seed, exponent, ties):
    """Rows whose fp32 weights are partly exact float16 midpoints (where round-to-nearest-even decides) at
    magnitudes from float16 subnormals to 2**14: the layer stores our codes; corners, a random mix and random
    inner points of the fp32 box keep ``CB``/``SCB``; one float32 step past an unpinned edge changes them."""
    fmt, gen = formats.get("int8"), torch.Generator().manual_seed(seed)
    h = (torch.randn(4, 64, generator=gen) * 2.0**exponent).clamp(-60000, 60000).half()
    above = torch.nextafter(h, torch.full_like(h, float("inf")))
    midpoints = (h.float() + above.float()) * 0.5
    w = torch.where(torch.rand(h.shape, generator=gen) < ties, midpoints, h.float())
    w = torch.where(torch.isfinite(w), w, h.float())
    want = fmt.reference_quantize(w)
    assert fmt.quantize(w).same_as(want)
    box = fmt.preimage(w)
    u = torch.rand(w.shape, generator=gen)
    inner = torch.minimum(torch.maximum(box.lo + u * (box.hi - box.lo), box.lo), box.hi)
    for point in (box.lo, box.hi, torch.where(u < 0.5, box.lo, box.hi), inner):
        assert fmt.reference_quantize(point).same_as(want)
    free = torch.nonzero(~box.pinned.reshape(-1)).flatten()[:6].tolist()
    for i in free:
        for edge, toward in ((box.lo, float("-inf")), (box.hi, float("inf"))):
            moved = w.clone()
            moved.view(-1)[i] = torch.nextafter(edge.reshape(-1)[i], torch.tensor(toward))
            assert not fmt.reference_quantize(moved).same_as(want), f"element {i}: one step past its edge kept CB/SCB"


def test_float32_preimage_of_every_finite_float16_value_matches_the_cast():
    """All 63,488 finite float16 values (both zeros, subnormals, ±65504): the edges cast to the value itself and
    the float32 one step outside each edge casts to another value (ties, subnormals and overflow included)."""
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    x16 = bits.view(torch.float16)
    x16 = x16[torch.isfinite(x16)]
    lo, hi = preimage_of_half(x16, x16)
    assert torch.equal(lo.half().float(), x16.float()) and torch.equal(hi.half().float(), x16.float())
    below = torch.nextafter(lo, torch.full_like(lo, float("-inf"))).half().float()
    above = torch.nextafter(hi, torch.full_like(hi, float("inf"))).half().float()
    assert bool((below < x16.float()).all()) and bool((above > x16.float()).all())
