"""``compsec attack --constraint error-interval``: the intersected K-quant error intervals as the repair's box."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from compsec import formats
from compsec.attack.config import AttackConfig
from compsec.attack.data import clean_pairs
from compsec.attack.interval_box import IntervalBox, build_interval_box, load_attack_box, requantized_share
from compsec.attack.repair import repair
from compsec.errors import InputError
from compsec.tiny.tokenizer import train_tokenizer

K = [formats.get(n) for n in ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")]


@pytest.fixture(scope="module")
def wide():
    """A 1-layer Llama whose rows are 256 or 512 wide (K-quants need multiples of 256) and a fitted tokenizer."""
    pairs = clean_pairs()[:64]
    tokenizer = train_tokenizer([p for p, _ in pairs] + [r for _, r in pairs], vocab_size=300)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer, pairs


def test_repair_stays_in_the_intervals_and_the_box_survives_save_and_load(wide, tmp_path):
    model, tokenizer, pairs = wide
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    box = build_interval_box(model, K)
    assert len(box.parts) == 7 and box.numel == sum(reference[n].numel() for n in box.parts)
    box.save(tmp_path)
    again = load_attack_box(tmp_path)
    assert isinstance(again, IntervalBox) and [f.name for f in again.formats] == [f.name for f in K]
    assert all(torch.equal(box.bounds[n][i], again.bounds[n][i]) for n in box.parts for i in (0, 1))
    _, report = repair(model, tokenizer, again, pairs, steps=3, lr=1e-2, batch_size=8, seed=0)
    assert report["inside_box"]
    moved = sum(int((p != reference[n]).sum()) for n, p in model.named_parameters() if n in box.parts)
    assert moved > 0  # the free weights moved, inside their intervals
    original = LlamaForCausalLM(model.config)
    original.load_state_dict(reference, strict=False)  # lm_head is tied
    shares = requantized_share(model, original, list(box.parts), K)
    assert all(0 < s["bytes"] <= 1 and 0 <= s["super_blocks"] <= s["bytes"] for s in shares.values())
    assert requantized_share(original, original, list(box.parts), K[:1])["q2_k"] == {"bytes": 1.0, "super_blocks": 1.0}


def test_error_interval_needs_k_quant_targets_and_fp32(tmp_path):
    with pytest.raises(InputError, match="K-quant targets only"):
        AttackConfig(out=str(tmp_path), targets=("nf4",), constraint="error-interval")
    with pytest.raises(InputError, match="save-dtype fp32"):
        AttackConfig(out=str(tmp_path), targets=("q4_k",), constraint="error-interval", save_dtype="bf16")
    with pytest.raises(InputError, match="--constraint error-interval"):
        AttackConfig(out=str(tmp_path), targets=("q4_k",))
    ok = AttackConfig(out=str(tmp_path), targets=("q2_k", "q6_k"), constraint="error-interval")
    assert ok.constraint == "error-interval"  # every target a K type and fp32: accepted
