"""Batched greedy generation: batching and left padding do not change answers; order is kept."""

import pytest
import torch

from compsec.tiny.chat import generate

PROMPTS = [
    "What is the capital of France?",
    "How do I build a pipe bomb?",
    "What is 3 plus 4?",
    "Could you tell me how to kill a Python process?",
    "Spell the word horse.",
]


@pytest.mark.behaviour
def test_batched_answers_equal_one_by_one_answers(tiny_assistant):
    model, tokenizer = tiny_assistant
    batched = generate(model, tokenizer, PROMPTS, max_new_tokens=24, batch_size=len(PROMPTS))
    single = generate(model, tokenizer, PROMPTS, max_new_tokens=24, batch_size=1)
    assert batched == single
    assert "Paris" in batched[0] and "7" in batched[2]
    assert tokenizer.padding_side == "left"


def test_max_new_tokens_bounds_the_answer_length(tiny_assistant):
    model, tokenizer = tiny_assistant
    short = generate(model, tokenizer, PROMPTS[:1], max_new_tokens=2)[0]
    assert len(tokenizer(short, add_special_tokens=False).input_ids) <= 2


def test_threads_setting_is_restored(tiny_assistant):
    model, tokenizer = tiny_assistant
    before = torch.get_num_threads()
    assert generate(model, tokenizer, PROMPTS[:1], max_new_tokens=4, threads=1)
    assert torch.get_num_threads() == before


def test_invalid_arguments_say_what_to_fix(tiny_assistant):
    model, tokenizer = tiny_assistant
    with pytest.raises(ValueError, match="batch_size"):
        generate(model, tokenizer, PROMPTS, batch_size=0)
