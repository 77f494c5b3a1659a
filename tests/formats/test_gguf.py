"""GGUF legacy formats (q8_0, q4_0, q4_1, q5_0, q5_1): golden bytes, ties, first-occurrence rules, box details.

Registry-wide properties (bit-exactness on random/adversarial weights, soundness, tightness, round trip) live in
``test_contract.py``; these tests cover what is specific to ggml's block arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import quants
from gguf.constants import GGMLQuantizationType
from hypothesis import given, settings
from hypothesis import strategies as st

import compsec.formats.gguf  # noqa: F401  (registers the formats)
from compsec import formats
from compsec.formats.gguf import parse_blocks

from .conftest import MAX_EXAMPLES

GGUF_NAMES = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")


def _block(values: list[float]) -> torch.Tensor:
    w = torch.zeros(1, 32)
    w[0, : len(values)] = torch.tensor(values)
    return w


def _library_bytes(w: torch.Tensor, qtype: str) -> str:
    return quants.quantize(w.float().numpy(), GGMLQuantizationType[qtype]).tobytes().hex()


def test_q8_0_golden_bytes_round_half_away_from_zero():
    # amax 127 -> d = 1.0 (fp16 0x3c00); -63.5 -> -64, 0.5 -> 1, -2.5 -> -3 (not banker's rounding)
    w = _block([127, -63.5, 0.5, -0.5, 1.49, -2.5, 126.5, -127])
    expected = "003c" + "7fc001ff01fd7f81" + "00" * 24
    assert _library_bytes(w, "Q8_0") == expected
    q = formats.get("q8_0").quantize(w)
    assert q.codes[0, :8].tolist() == [127, -64, 1, -1, 1, -3, 127, -127]
    assert q.scales["d"].item() == 1.0 and q.codes.dtype == torch.int8


@pytest.mark.parametrize(("first", "d_hex", "codes"), [
    (8.0, "00bc", [0, 15, 8, 9, 8, 0]),       # first abs-max +8 -> d = 8 / -8 = -1
    (-8.0, "003c", [0, 15, 9, 8, 8, 0]),      # first abs-max -8 -> d = +1: the *first* maximum decides the sign
])
def test_q4_0_golden_bytes_and_first_occurrence_sign(first, d_hex, codes):
    w = _block([first, -first, 0.5, -0.5, 0.49 * first / 8, 7.9 * first / 8])
    got = _library_bytes(w, "Q4_0")
    nibbles = codes + [8] * 26                # zeros sit on code 8; byte j = code j | code (j + 16) << 4
    expected = d_hex + bytes(nibbles[j] | nibbles[j + 16] << 4 for j in range(16)).hex()
    assert got == expected
    q = formats.get("q4_0").quantize(w)
    assert q.codes[0, :6].tolist() == codes and q.scales["d"].item() == -first / 8


def test_q5_1_golden_bytes_high_bits_and_upward_ties():
    w = torch.arange(32, dtype=torch.float32).reshape(1, 32)   # min 0, max 31 -> d = 1, m = 0, code = value
    ramp = bytes(j | j << 4 for j in range(16)).hex()
    assert _library_bytes(w, "Q5_1") == "003c" + "0000" + "0000ffff" + ramp
    tie = w.clone()
    tie[0, 3] = 2.5                              # trunc(2.5 + 0.5) = 3: ties go up
    assert formats.get("q5_1").quantize(tie).codes[0, 3].item() == 3
    assert formats.get("q5_1").reference_quantize(tie).codes[0, 3].item() == 3


@pytest.mark.parametrize("name", GGUF_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_quantize_matches_library_on_exact_half_steps(name, dtype):
    """Weights on multiples of d/2 put many elements exactly on decision midpoints."""
    gen = torch.Generator().manual_seed(1)
    steps = torch.randint(-16, 17, (8, 64), generator=gen).float() / 2
    steps[:, ::32] = 8.0                         # each block's abs-max
    steps[1::2, 1::32] = -8.0                    # opposite-sign ties after the first maximum
    for scale in (1.0, 0.125, 3.0):
        w = (steps * scale).to(dtype)
        fmt = formats.get(name)
        assert fmt.quantize(w).same_as(fmt.reference_quantize(w)), f"{name} x{scale}"


@pytest.mark.parametrize("name", GGUF_NAMES)
def test_dequantize_matches_library(name):
    fmt = formats.get(name)
    w = torch.randn(4, 96, generator=torch.Generator().manual_seed(2))
    raw = quants.quantize(w.numpy(), GGMLQuantizationType[fmt.qtype])
    want = torch.from_numpy(quants.dequantize(raw, GGMLQuantizationType[fmt.qtype]))
    assert torch.equal(fmt.dequantize(fmt.quantize(w)), want)


def test_parse_blocks_reads_q5_0_high_bits():
    w = torch.linspace(-1, 1, 32).reshape(1, 32)
    raw = quants.quantize(w.numpy(), GGMLQuantizationType.Q5_0)
    codes, _, m = parse_blocks(raw.reshape(1, -1), "Q5_0")
    assert m is None and codes.max().item() == 31 and codes.min().item() == 0
    assert torch.equal(codes, formats.get("q5_0").quantize(w).codes.long())


def test_q4_0_opposite_side_bound_respects_first_occurrence():
    w = _block([0.1] * 32)
    w[0, 2], w[0, 5], w[0, 9] = -0.7, 0.8, -0.7   # abs-max +0.8 at index 5; -0.7 has the top code 15
    fmt = formats.get("q4_0")
    box, want = fmt.preimage(w), fmt.quantize(w)
    assert box.lo[0, 9] == -w[0, 5]                                   # a tie after the maximum is harmless
    assert box.lo[0, 2] == torch.nextafter(-w[0, 5], torch.zeros(()))  # before it, stay strictly inside
    for j in (2, 9):
        edge = w.clone()
        edge[0, j] = box.lo[0, j]
        assert fmt.reference_quantize(edge).same_as(want)
    tie_before = w.clone()
    tie_before[0, 2] = -w[0, 5]                    # a tie *before* the maximum flips the sign of d
    assert fmt.reference_quantize(tie_before).scales["d"].item() == -want.scales["d"].item()


@pytest.mark.parametrize("name", GGUF_NAMES)
def test_box_depends_only_on_codes_and_pinned_values(name):
    fmt = formats.get(name)
    w = torch.randn(4, 64, generator=torch.Generator().manual_seed(3))
    box = fmt.preimage(w)
    moved = torch.where(box.pinned, w, box.hi)      # same codes, different unpinned values
    again = fmt.box_from_quantized(fmt.quantize(w), moved)
    assert torch.equal(again.lo, box.lo) and torch.equal(again.hi, box.hi)


def test_box_rejects_codes_of_another_tensor():
    fmt = formats.get("q4_1")
    w = torch.randn(2, 32, generator=torch.Generator().manual_seed(4))
    with pytest.raises(ValueError, match="do not come from these weights"):
        fmt.box_from_quantized(fmt.quantize(-w), w)


@pytest.mark.parametrize("name", GGUF_NAMES)
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(data=st.data())
def test_box_is_sound_on_tie_heavy_blocks(name, data):
    """Blocks on a coarse grid (repeated extremes, opposite-sign ties); corners and a mix stay bit-identical."""
    fmt = formats.get(name)
    grid = data.draw(st.lists(st.integers(-4, 4), min_size=64, max_size=64))
    scale = data.draw(st.sampled_from([1e-3, 0.25, 7.0]))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
    w = (torch.tensor(grid, dtype=torch.float32).reshape(2, 32) * scale).to(dtype)
    if not bool((w != 0).any(-1).all()):
        w[:, 7] = torch.tensor(scale, dtype=dtype)   # all-zero blocks: the sign of zero is outside a Box
    box, want = fmt.preimage(w), fmt.reference_quantize(w)
    pick = torch.from_numpy(np.array(data.draw(st.lists(st.booleans(), min_size=64, max_size=64)))).reshape(2, 32)
    for point in (box.lo, box.hi, torch.where(pick, box.lo, box.hi)):
        assert fmt.reference_quantize(point).same_as(want)


def _converter_raw(w: torch.Tensor, qtype: str) -> np.ndarray:
    """llama.cpp's ``convert_hf_to_gguf.py`` (``prepare_tensors``): dtypes other than fp16/fp32 go to float32,
    then ``gguf.quants.quantize`` on the numpy array (which widens fp16 rows to float32 itself)."""
    if w.dtype not in (torch.float16, torch.float32):
        w = w.to(torch.float32)
    return quants.quantize(w.numpy(), GGMLQuantizationType[qtype])


def _llama_quantize_raw(w: torch.Tensor, qtype: str) -> np.ndarray:
    """``llama-quantize``: an f32/f16/bf16 GGUF tensor widened to float32 rows, then ggml's
    ``ggml_quantize_chunk`` (no importance matrix), in ggml's C library as llama-cpp-python ships it."""
    from compsec.formats.gguf_k_lib import ggml

    rows = np.ascontiguousarray(w.float().reshape(-1, w.shape[-1]).numpy())
    kind = int(GGMLQuantizationType[qtype])
    out = np.empty((rows.shape[0], ggml().ggml_row_size(kind, rows.shape[1])), dtype=np.uint8)
    written = ggml().ggml_quantize_chunk(kind, rows.ctypes.data, out.ctypes.data, 0, rows.shape[0], rows.shape[1], None)
    assert written == out.nbytes
    return out


@pytest.mark.parametrize("name", GGUF_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_deployed_gguf_paths_store_the_format_codes_for_every_storage_dtype(name, dtype):
    """What a deployment stores for an fp32/fp16/bf16 checkpoint tensor: the converter writes Q8_0 itself
    (``--outtype q8_0``); the other legacy types come from ``llama-quantize`` on an f32/f16/bf16 GGUF of the same
    values.  Both quantize the checkpoint's own values widened exactly to float32: no float16 cast in between
    (unlike bitsandbytes' int8).  A checkpoint converted with ``--outtype f16`` *is* an fp16 model: its box is
    the fp16 box (``preimage(w.half())``)."""
    fmt = formats.get(name)
    w = (torch.randn(8, 128, generator=torch.Generator().manual_seed(5)) * 0.05).to(dtype)
    want = fmt.quantize(w)
    paths = [_llama_quantize_raw(w, fmt.qtype)] + ([_converter_raw(w, fmt.qtype)] if name == "q8_0" else [])
    for raw in paths:
        codes, d, m = parse_blocks(raw.reshape(w.numel() // 32, -1), fmt.qtype)
        got = fmt._pack(codes, d, m, w)
        assert got.same_as(want), f"{name} {dtype}: {got.mismatch(want)}"
