"""A micro Llama (one block, hidden 64) with a local tokenizer, saved once per module: the defences' test subject."""

from __future__ import annotations

import pytest
import torch


def build_micro(folder, hidden: int = 64, layers: int = 1):
    from transformers import LlamaConfig, LlamaForCausalLM

    from compsec.attack.data import clean_pairs
    from compsec.models.io import save_model
    from compsec.tiny.tokenizer import train_tokenizer

    pairs = clean_pairs()[:300]
    tokenizer = train_tokenizer([p for p, _ in pairs] + [r for _, r in pairs], vocab_size=300)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=128, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return save_model(LlamaForCausalLM(config).eval(), tokenizer, folder)


@pytest.fixture(scope="package")
def micro_dir(tmp_path_factory):
    """Path of a saved micro Llama (fp32 HF folder with tokenizer and chat template). Do not modify."""
    return build_micro(tmp_path_factory.mktemp("defend-micro") / "model")
