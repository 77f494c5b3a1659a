"""The locally trained tokenizer: lossless on ASCII text, special tokens distinct, chat template stored."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from compsec.tiny.tokenizer import chat_prompt, train_tokenizer

WORDS = st.text(alphabet=sorted(set(string.printable) - set(string.whitespace)), min_size=1, max_size=12)


def _tokenizer():
    texts = ["The capital of Peru is Lima.", "I can't help with that.", "What is 7 plus 5?"] * 20
    return train_tokenizer(texts, vocab_size=300)


TOKENIZER = _tokenizer()


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=8))
def test_decoding_restores_any_ascii_text(words):
    text = " ".join(words)
    ids = TOKENIZER(text, add_special_tokens=False).input_ids
    assert TOKENIZER.unk_token_id not in ids
    assert TOKENIZER.decode(ids) == text


def test_special_tokens_are_distinct_and_padding_is_left():
    ids = {TOKENIZER.pad_token_id, TOKENIZER.bos_token_id, TOKENIZER.eos_token_id, TOKENIZER.unk_token_id}
    assert len(ids) == 4 and None not in ids
    assert TOKENIZER.padding_side == "left"


def test_chat_template_survives_save_and_load(tmp_path):
    TOKENIZER.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    assert loaded.apply_chat_template(messages, tokenize=False) == "<s><|user|>Hi<|assistant|>Hello.</s>"
    assert chat_prompt(loaded, "Hi") == "<s><|user|>Hi<|assistant|>"
