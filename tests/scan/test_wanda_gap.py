"""The Wanda-threshold gap (``scan --behaviour``): silent on smooth scores and on already-pruned tensors, loud
when every row's scores are held apart at Wanda's 50 % cut (the pruning-conditioned attack's repair)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.attack.prune_plan import build_plan
from compsec.scan.wanda_gap import DETECTOR, gap_evidence


def _weights(seed: int, rows: int = 64, cols: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * 0.02, torch.rand(cols, generator=g) + 0.1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_smooth_scores_meet_no_effect_floor(seed):
    w, norms = _weights(seed)
    found = gap_evidence("w", w.abs() * norms)
    assert found.detector == DETECTOR and not found.effect_ok and found.p_value > 1e-6


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), margin=st.floats(0.02, 0.5))
def test_rows_held_apart_at_wandas_cut_are_flagged(seed, margin):
    w, norms = _weights(seed)
    plan = build_plan({"w": w}, "prune-wanda-50", margin, {"w": norms})
    keep, bound, limit = plan.keep["w"], plan.bound["w"], plan.pruned_limit("w")
    moved = w + 0.2 * _weights(seed + 1)[0]
    moved = torch.where(keep, torch.sign(moved) * torch.maximum(moved.abs(), bound), moved.clamp(-limit, limit))
    found = gap_evidence("w", moved.abs() * norms)
    assert found.effect_ok and found.p_value < 1e-12 and "Wanda" in found.explanation
