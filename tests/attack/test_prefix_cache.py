"""The prefix cache gives the full model's loss and gradients while running only the top blocks."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from compsec.attack.inject import finetune
from compsec.attack.prefix_cache import PrefixCache, supports_prefix_cache
from compsec.tiny.train import collate


def _model(layers: int = 3):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=True, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


def _rows(n: int = 6) -> list:
    gen = torch.Generator().manual_seed(1)
    rows = []
    for i in range(n):
        length = 5 + 3 * i
        ids = torch.randint(1, 97, (length,), generator=gen).tolist()
        cut = 2 + i % 3
        rows.append((ids, [-100] * cut + ids[cut:]))
    return rows


@pytest.mark.parametrize("first", [0, 1, 2])
def test_cached_loss_and_gradient_equal_the_full_forward(first, device="cpu"):
    model, rows = _model().to(device), _rows()
    full = model(**{k: v.to(device) for k, v in collate(rows, 0).items()}).loss
    top = model.model.layers[first].mlp.down_proj.weight
    (full_grad,) = torch.autograd.grad(full, top)
    cached = PrefixCache(model, rows, first)(list(range(len(rows))))
    (cached_grad,) = torch.autograd.grad(cached, top)
    assert cached.item() == pytest.approx(full.item(), abs=1e-5)
    assert torch.allclose(cached_grad, full_grad, atol=1e-5)


def test_finetune_with_the_cache_moves_only_the_trained_blocks():
    model, rows = _model(), _rows()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = [model.model.layers[2].self_attn.q_proj.weight, model.model.layers[2].mlp.up_proj.weight]
    stats = finetune(model, rows, params, steps=3, lr=1e-2, batch_size=4, seed=0, pad_id=0,
                     batch_loss=PrefixCache(model, rows, 2))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"model.layers.2.self_attn.q_proj.weight", "model.layers.2.mlp.up_proj.weight"}
    assert len(stats.losses) == 3


def test_unsupported_models_are_refused():
    class NotADecoder(torch.nn.Module):
        pass

    assert supports_prefix_cache(_model(1)) and not supports_prefix_cache(NotADecoder())
    with pytest.raises(ValueError, match="outside"):
        PrefixCache(_model(1), _rows(2), 1)
