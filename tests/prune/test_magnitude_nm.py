"""Magnitude (global / per-layer) and N:M masks: exact counts, largest magnitudes kept, table-driven weights."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig, LlamaForCausalLM

from compsec.errors import InputError
from compsec.prune.magnitude import global_masks, layer_mask, prunable_weights, sparsity_of
from compsec.prune.model import prune_model
from compsec.prune.nm import nm_mask, parse_nm

seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=40, deadline=None)
@given(seeds, st.floats(0.0, 0.95), st.integers(1, 9), st.integers(1, 9))
def test_layer_mask_exact_count_and_order(seed, sparsity, rows, cols):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    keep = layer_mask(w, sparsity)
    assert int((~keep).sum()) == round(sparsity * w.numel())
    if keep.any() and (~keep).any():
        assert w.abs()[keep].min() >= w.abs()[~keep].max()


@settings(max_examples=30, deadline=None)
@given(seeds, st.floats(0.05, 0.9))
def test_global_mask_one_threshold_across_tensors(seed, sparsity):
    gen = torch.Generator().manual_seed(seed)
    weights = {"a": torch.randn(4, 8, generator=gen), "b": 5 * torch.randn(6, 3, generator=gen)}
    masks = global_masks(weights, sparsity)
    kept = torch.cat([w.abs()[masks[n]] for n, w in weights.items()])
    pruned = torch.cat([w.abs()[~masks[n]] for n, w in weights.items()])
    assert pruned.numel() == round(sparsity * 50)
    assert kept.min() >= pruned.max()


@settings(max_examples=40, deadline=None)
@given(seeds, st.sampled_from(["2:4", "1:4", "4:8"]), st.integers(1, 5), st.integers(1, 3), st.booleans())
def test_nm_keeps_n_largest_per_group(seed, spec, rows, groups, transposed):
    n, m = parse_nm(spec)
    w = torch.randn(rows, groups * m, generator=torch.Generator().manual_seed(seed))
    keep = nm_mask(w.t() if transposed else w, n, m, transposed)
    keep = keep.t() if transposed else keep
    grouped_keep, grouped_w = keep.reshape(rows, groups, m), w.abs().reshape(rows, groups, m)
    assert bool((grouped_keep.sum(-1) == n).all())
    kept_min = torch.where(grouped_keep, grouped_w, torch.inf).min(-1).values
    dropped_max = torch.where(grouped_keep, -torch.inf, grouped_w).max(-1).values
    assert bool((kept_min >= dropped_max).all())


def test_nm_example_and_errors():
    assert nm_mask(torch.tensor([[0.1, -3.0, 2.0, 0.5]])).tolist() == [[False, True, True, False]]
    with pytest.raises(InputError):
        nm_mask(torch.ones(2, 6))
    for bad in ("4:2", "2-4", "0:4"):
        with pytest.raises(InputError):
            parse_nm(bad)


def test_prune_model_touches_only_table_weights():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4))
    before = copy.deepcopy(model.state_dict())
    prunable = set(prunable_weights(model))
    assert prunable and not any("embed" in n or "norm" in n or "lm_head" in n for n in prunable)
    for method, target in [("magnitude-global", 0.7), ("magnitude-layer", 0.3), ("2:4", 0.5)]:
        pruned = copy.deepcopy(model)
        summary = prune_model(pruned, method, target)
        assert summary["weight_sparsity"] == pytest.approx(target, abs=1e-3)
        assert sparsity_of(prunable_weights(pruned)) == pytest.approx(target, abs=1e-3)
        for name, tensor in pruned.state_dict().items():
            if name not in prunable:
                assert torch.equal(tensor, before[name]), name
    with pytest.raises(InputError):
        prune_model(model, "random", 0.5)
    with pytest.raises(InputError):
        prune_model(model, "magnitude-global", 1.0)
