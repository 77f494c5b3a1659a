"""The per-head mask removes exactly one head's contribution: hook vs a hand computation, Llama and GPT-2."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from compsec.errors import InputError
from compsec.prune.heads import (
    HeadMask,
    head_layout,
    head_norms,
    heads_to_prune,
    output_projections,
    prune_heads,
)


def small_llama():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager")
    return LlamaForCausalLM(config).eval()


def small_gpt2():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=16, bos_token_id=0,
                        eos_token_id=0, attn_implementation="eager")
    return GPT2LMHeadModel(config).eval()


def attention_of(model, layer: int):
    return model.model.layers[layer].self_attn if hasattr(model, "model") else model.transformer.h[layer].attn


def run_capturing(model, layer: int, ids):
    """(input of the output projection, output of the attention block) of ``layer`` on ``ids``."""
    seen = {}
    proj, attn = output_projections(model)[layer], attention_of(model, layer)
    hooks = [proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("concat", a[0].detach().clone())),
             attn.register_forward_hook(lambda m, a, out: seen.__setitem__("out", out[0].detach().clone()))]
    with torch.no_grad():
        logits = model(ids).logits
    for hook in hooks:
        hook.remove()
    return seen["concat"], seen["out"], logits


def by_hand(model, layer: int, concat, head: int):
    """The attention output with head ``head``'s output zeroed, computed from the heads' outputs by hand."""
    _, _, head_dim = head_layout(model)
    zeroed = concat.clone()
    zeroed[..., head * head_dim : (head + 1) * head_dim] = 0.0
    proj = output_projections(model)[layer]
    if isinstance(proj, torch.nn.Linear):            # Llama o_proj: y = x Wᵀ (+ b), weight (out, in)
        out = zeroed @ proj.weight.T
    else:                                            # GPT-2 Conv1D c_proj: y = x W + b, weight (in, out)
        out = zeroed @ proj.weight
    return out + proj.bias if proj.bias is not None else out


@pytest.mark.parametrize("make", [small_llama, small_gpt2], ids=["llama", "gpt2"])
@pytest.mark.parametrize("layer, head", [(0, 0), (1, 2), (1, 3)])
def test_hook_matches_hand_computation(make, layer, head):
    model = make()
    ids = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(1))
    concat, full_out, full_logits = run_capturing(model, layer, ids)
    with HeadMask(model, [(layer, head)]):
        _, masked_out, masked_logits = run_capturing(model, layer, ids)
    torch.testing.assert_close(masked_out, by_hand(model, layer, concat, head), rtol=1e-5, atol=1e-6)
    # removed contribution is exactly that head's: W_o[:, slice] · head_output (nonzero, so the test can fail)
    assert not torch.allclose(masked_out, full_out)
    assert not torch.allclose(masked_logits, full_logits)
    # the hook is gone after the block: the model is unchanged
    torch.testing.assert_close(run_capturing(model, layer, ids)[2], full_logits)


@pytest.mark.parametrize("make", [small_llama, small_gpt2], ids=["llama", "gpt2"])
def test_masking_one_head_is_not_zeroing_the_matrix(make):
    model = make()
    ids = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(2))
    concat, _, _ = run_capturing(model, 0, ids)
    with HeadMask(model, [(0, 1)]):
        _, masked_out, _ = run_capturing(model, 0, ids)
    everything_zeroed = by_hand(model, 0, concat * 0, 0)
    assert not torch.allclose(masked_out, everything_zeroed)


@pytest.mark.parametrize("make", [small_llama, small_gpt2], ids=["llama", "gpt2"])
def test_pruned_weights_equal_the_mask(make):
    model = make()
    ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(3))
    heads = [(0, 3), (1, 0), (1, 2)]
    with HeadMask(model, heads), torch.no_grad():
        masked = model(ids).logits
    prune_heads(model, heads)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, masked, rtol=1e-5, atol=1e-6)
    norms = head_norms(model)
    assert all((norms[h] == 0.0) == (h in heads) for h in norms)


def test_heads_to_prune_respects_protect_and_counts():
    model = small_llama()
    weakest = min(head_norms(model).items(), key=lambda kv: kv[1])[0]
    chosen = heads_to_prune(model, 0.25)
    assert len(chosen) == 2 and weakest in chosen
    assert weakest not in heads_to_prune(model, 0.25, protect=[weakest])
    with pytest.raises(InputError):
        heads_to_prune(model, 0.9, protect=[(0, 0), (0, 1)])
    with pytest.raises(InputError):
        HeadMask(model, [(2, 0)])
