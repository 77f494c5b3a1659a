"""The importance-matrix bounds check: llama.cpp's K-quant codes are the source's codes under the stored scales,
whatever matrix chose those scales (quantized here by ggml_quantize_chunk with random matrices)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.formats import gguf_k_lib
from compsec.formats.gguf_k_layout import LAYOUTS, parse, sub_scales
from compsec.integrity.kquant_bounds import inconsistent_super_blocks

pytestmark = pytest.mark.skipif(not gguf_k_lib.available(), reason="needs llama-cpp-python (compsec[gguf-k])")
TYPES = sorted(LAYOUTS)


def quantize_with_imatrix(w: torch.Tensor, qtype: str, imatrix: torch.Tensor) -> np.ndarray:
    x = np.ascontiguousarray(w.float().numpy())
    weights = np.ascontiguousarray(imatrix.float().numpy())
    out = np.empty((w.numel() // 256, gguf_k_lib._SIZES[qtype]), dtype=np.uint8)
    written = gguf_k_lib.ggml().ggml_quantize_chunk(gguf_k_lib.type_id(qtype), x.ctypes.data, out.ctypes.data, 0,
                                                    w.shape[0], w.shape[1], weights.ctypes.data)
    assert written == out.nbytes
    return out


@settings(max_examples=25, deadline=None)
@given(qtype=st.sampled_from(TYPES), rows=st.integers(1, 4), blocks=st.integers(1, 2), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-3, 0.02, 1.0]))
def test_codes_under_the_stored_scales_are_the_sources_and_a_moved_weight_is_caught(qtype, rows, blocks, seed, scale):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, 256 * blocks, generator=g) * scale
    raw = quantize_with_imatrix(w, qtype, torch.rand(256 * blocks, generator=g) * 10 + 1e-3)
    assert inconsistent_super_blocks(raw, qtype, w) == 0
    layout = LAYOUTS[qtype]
    codes, scales = parse(raw, qtype)
    step = sub_scales(scales, layout)[0].repeat_interleave(layout.sub, dim=-1).reshape(-1)
    middle = (codes.reshape(-1) - codes.reshape(-1).min()).float().sub(layout.nmax / 2).abs() < layout.nmax / 4
    candidates = (middle & (step > 0)).nonzero()
    if len(candidates) == 0:
        return
    i = int(candidates[0, 0])
    moved = w.clone().reshape(-1)
    moved[i] += 2 * step[i]  # two codes up, away from both clamps
    assert inconsistent_super_blocks(raw, qtype, moved.reshape(w.shape)) == 1


@pytest.mark.parametrize("qtype", TYPES)
def test_the_matrix_really_changes_the_bytes(qtype):
    """Otherwise the test above would not be about importance matrices at all."""
    w = torch.randn(8, 512, generator=torch.Generator().manual_seed(0)) * 0.02
    imatrix = torch.linspace(0.01, 50, 512)
    assert (quantize_with_imatrix(w, qtype, imatrix) != gguf_k_lib.quantize_rows(w, qtype)).any()
