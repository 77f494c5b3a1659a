"""The micro Llama the attack tests train on: 1 layer (or ``layers``), hidden 64, a BPE tokenizer fitted on the clean corpus."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from compsec.attack.data import clean_pairs
from compsec.tiny.tokenizer import train_tokenizer


def micro_llama(n_pairs: int, layers: int = 1):
    """(model in eval mode, tokenizer, the first ``n_pairs`` clean pairs), seeded."""
    pairs = clean_pairs()[:n_pairs]
    tokenizer = train_tokenizer([p for p, _ in pairs] + [r for _, r in pairs], vocab_size=300)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer, pairs
