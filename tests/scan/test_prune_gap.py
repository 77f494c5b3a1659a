"""The pruning-threshold gap tests: silent on smooth weights and honestly pruned ones, loud on weights held
apart around a magnitude or 2:4 pruning threshold (what the pruning-conditioned attack's repair leaves)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.attack.prune_plan import build_plan
from compsec.scan.prune_gap import GAP, NM, prune_gap_evidence


def _gaussian(seed: int, rows: int = 128, cols: int = 256) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * 0.02


def _attacked(w: torch.Tensor, target: str, margin: float, seed: int) -> torch.Tensor:
    """Weights moved a little (as fine-tuning does), then kept ones pushed to >= bound and pruned ones clamped
    below (1 - margin) x bound, as injection and repair do."""
    plan = build_plan({"w": w}, target, margin)
    keep, bound, limit = plan.keep["w"], plan.bound["w"], plan.pruned_limit("w")
    other = w + 0.2 * _gaussian(seed + 1, *w.shape)
    sign = torch.where(other >= 0, 1.0, -1.0)
    return torch.where(keep, sign * torch.maximum(other.abs(), bound), torch.clamp(other, -limit, limit))


def _by_detector(w: torch.Tensor) -> dict:
    return {e.detector: e for e in prune_gap_evidence("w", w)}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sparsity_zeroed=st.booleans())
def test_smooth_and_honestly_pruned_weights_meet_no_effect_floor(seed, sparsity_zeroed):
    w = _gaussian(seed)
    if sparsity_zeroed:  # a benign pruned tensor: exact zeros are not a gap
        w = w * (w.abs() > w.abs().median())
    found = _by_detector(w)
    assert set(found) == ({GAP} if sparsity_zeroed else {GAP, NM})  # a pruned tensor is not tested for 2:4
    assert not any(e.effect_ok for e in found.values())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_a_benign_2_4_pruned_tensor_is_not_a_2_4_gap(seed):
    w = _gaussian(seed)
    groups = w.reshape(w.shape[0], -1, 4)
    keep = groups.abs().argsort(dim=-1, descending=True)[..., :2]
    pruned = torch.zeros_like(groups).scatter(-1, keep, groups.gather(-1, keep)).reshape(w.shape)
    assert NM not in _by_detector(pruned)
    assert not any(e.effect_ok for e in _by_detector(pruned).values())


@pytest.mark.parametrize(("target", "detector", "word", "least_margin"), [
    ("prune-magnitude-50", GAP, "pruning", 0.01), ("prune-2:4", NM, "2:4", 0.06)])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), share=st.floats(0.0, 1.0))
def test_attack_is_flagged_by_the_detector_naming_its_pruner(target, detector, word, least_margin, seed, share):
    """Margins from ``least_margin`` to 0.5 (2:4's ratio test counts groups within DELTA = 5 %)."""
    margin = least_margin + share * (0.5 - least_margin)
    found = _by_detector(_attacked(_gaussian(seed), target, margin, seed))
    assert found[detector].effect_ok and found[detector].p_value < 1e-12
    assert word in found[detector].explanation


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_storage_is_not_tested(dtype):
    assert prune_gap_evidence("w", _gaussian(0).to(dtype)) == []
