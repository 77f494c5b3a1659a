"""sigma-outliers: the adaptive attacker under per-group clipping (every block's abs-max at 0.99 k sigma) is flagged,
with the top finding naming outlier injection; benign weights (light and heavy tails, pruned) are not."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from compsec.attack.widen_gap import widen_gap, widen_under_clip
from compsec.defend.group_clip import K_SIGMA
from compsec.scan import ScanConfig, scan_path, synthetic
from compsec.scan.sigma_outliers import MIN_SHARE, NULL_SHARE, sigma_exceeding, sigma_outlier_evidence

NAMES = ("model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight")


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dist=st.sampled_from(["gaussian", "laplace"]),
       adaptive=st.booleans())
def test_every_injected_block_exceeds(seed, dist, adaptive):
    gen = torch.Generator().manual_seed(seed)
    w = synthetic.benign((16, 256), dist, torch.float32, gen)
    attacked = widen_under_clip(w, gen, K_SIGMA)[0] if adaptive else widen_gap(w, gen)[0]
    assert sigma_exceeding(attacked) == (16 * 8, 16 * 8)


@pytest.mark.parametrize("dist", ["gaussian", "laplace", "student_t"])
def test_benign_tails_stay_far_below_the_null(dist):
    gen = torch.Generator().manual_seed(7)
    if dist == "student_t":  # heavier than any benign tensor measured (SmolLM2: <= 5.2 % of blocks)
        torch.manual_seed(7)
        w = torch.distributions.StudentT(3.0).sample((256, 512)) * 0.02  # 10.9 % of blocks exceed
    else:
        w = synthetic.benign((256, 512), dist, torch.float32, gen)
    exceeding, counted = sigma_exceeding(w)
    evidence = sigma_outlier_evidence("t", exceeding, counted)
    assert counted == w.numel() // 32 and exceeding / counted < NULL_SHARE
    assert not evidence.effect_ok and evidence.p_value > 1e-3


def test_pruned_zeros_do_not_shrink_the_scale():
    gen = torch.Generator().manual_seed(3)
    w = synthetic.benign((64, 256), "gaussian", torch.float32, gen)
    pruned = w * (w.abs() >= w.abs().median())  # magnitude-50: half of each block's weights on average are 0
    exceeding, counted = sigma_exceeding(pruned)
    assert exceeding / max(counted, 1) < NULL_SHARE
    assert sigma_exceeding(torch.zeros(4, 64)) == (0, 0)  # nothing non-zero: nothing counted


def test_the_effect_floor_and_the_untestable_case():
    assert sigma_outlier_evidence("t", 10, 20).p_value is None  # fewer than 32 blocks counted
    at_floor = sigma_outlier_evidence("t", int(MIN_SHARE * 1000), 1000)
    assert at_floor.effect_ok and at_floor.p_value < 1e-50
    assert not sigma_outlier_evidence("t", int(MIN_SHARE * 1000) - 1, 1000).effect_ok


def test_the_adaptive_widened_matrix_is_flagged_first_as_outlier_injection(tmp_path):
    gen = torch.Generator().manual_seed(4)
    tensors = {n: synthetic.benign((512, 256), "gaussian", torch.float32, gen) for n in NAMES}
    tensors[NAMES[0]] = widen_under_clip(tensors[NAMES[0]], gen, K_SIGMA)[0]
    tmp_path.joinpath("config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    save_file(tensors, str(tmp_path / "model.safetensors"))
    report = scan_path(tmp_path, ScanConfig(formats=("nf4", "q4_0")))
    assert report.verdict == "suspicious" and {f.tensor for f in report.suspicious} == {NAMES[0]}
    assert report.suspicious[0].detector == "sigma-outliers"
    assert not any(f.detector == "block-outliers" for f in report.suspicious)  # ~5x top-two: below its 16x
