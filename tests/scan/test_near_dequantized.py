"""The error-interval detector: weights clamped onto their own K-quant dequantized value (llama.cpp's)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.error_interval import error_interval_box
from compsec.formats import gguf_k_lib as lib
from compsec.scan.near_dequantized import DETECTOR, error_interval_evidence, near_dequantized

K = [formats.get(n) for n in ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")]


def weights(seed: int, rows: int = 64, scale: float = 0.02) -> torch.Tensor:
    return torch.randn(rows, 256, generator=torch.Generator().manual_seed(seed)) * scale


def clamped_onto_deq(w: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """What PGD leaves: a ``share`` of the free weights pushed to the bound of the intersected interval."""
    box = error_interval_box(w, K)
    pushed = torch.rand(w.shape, generator=torch.Generator().manual_seed(seed)) < share
    down = torch.rand(w.shape, generator=torch.Generator().manual_seed(seed + 1)) < 0.5
    return torch.where(pushed, torch.where(down, box.lo, box.hi), w)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.sampled_from([1e-3, 0.02, 0.5]), rows=st.integers(8, 64))
def test_benign_float32_weights_show_no_effect_under_any_k_type(seed, scale, rows):
    evidence = error_interval_evidence("w", weights(seed, rows, scale), K)
    assert len(evidence) == 5 and not any(e.effect_ok for e in evidence)
    assert all(e.detector == DETECTOR for e in evidence)


@pytest.mark.parametrize("share", [0.2, 0.6])
def test_a_repair_clamped_into_the_intervals_is_flagged_by_the_error_interval_detector(share):
    w = weights(1, rows=128)
    evidence = error_interval_evidence("w", clamped_onto_deq(w, share, 1), K)
    flagged = [e for e in evidence if e.effect_ok and e.p_value < 1e-12]
    assert flagged and all("Mind the Gap" in e.explanation for e in flagged)


def test_a_dequantized_checkpoint_is_grid_provenance_not_this_attack():
    w = weights(2)
    deq = lib.dequantize_blocks(lib.quantize_rows(w, "Q4_K"), "Q4_K").reshape(w.shape)
    r = near_dequantized(deq, "Q4_K")
    assert r.hits > 0.5 * r.weights and not r.effect_ok


def test_bf16_values_are_left_untested():
    evidence = error_interval_evidence("w", weights(3).bfloat16().float(), K)
    assert evidence and all(e.p_value is None and not e.effect_ok for e in evidence)


def test_grid_derived_weights_are_left_untested():
    """A dequantized Q4_1-like checkpoint (16 levels per 32-weight block, as SmolLM2's): untested, not flagged."""
    w = weights(4)
    step = w.reshape(-1, 32).abs().amax(-1, keepdim=True) / 8
    grid = ((w.reshape(-1, 32) / step).round() * step).reshape(w.shape)
    evidence = error_interval_evidence("w", grid, K)
    assert evidence and all(e.p_value is None and not e.effect_ok for e in evidence)
