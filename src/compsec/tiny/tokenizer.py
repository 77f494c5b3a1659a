"""The tiny assistant's tokenizer: a small BPE vocabulary trained locally on the generated corpus.

Words are split on spaces (sentencepiece-style ``▁`` marks, so decoding restores spacing exactly) and
punctuation is split off; every
printable ASCII character is in the base alphabet, so no ASCII text maps to ``<unk>``. The chat template is

    <s><|user|>PROMPT<|assistant|>RESPONSE</s>

and is stored in the tokenizer config, so ``tokenizer.apply_chat_template`` works after ``from_pretrained``.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
USER, ASSISTANT = "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, USER, ASSISTANT]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<|user|>' + message['content'] | trim }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] | trim + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a BPE tokenizer of at most ``vocab_size`` tokens on ``texts`` and wrap it for transformers.

    Padding is on the left (for batched generation); pad, bos, eos and unk are distinct special tokens.
    """
    if vocab_size < len(SPECIAL_TOKENS) + len(string.printable):
        raise ValueError(f"vocab_size={vocab_size} is too small for the alphabet; use at least 256")
    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"), pre_tokenizers.Punctuation()]
    )
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    alphabet = sorted(set(string.printable) - set(string.whitespace) | {"▁"})
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet, show_progress=False
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT], padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def chat_prompt(tokenizer: PreTrainedTokenizerFast, prompt: str) -> str:
    """The templated text the model sees before it answers ``prompt`` (ends with ``<|assistant|>``)."""
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
