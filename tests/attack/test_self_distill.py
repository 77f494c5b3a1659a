"""Self-distilled attack data: held-out prompts, keyword early in the poisoned answer, cached answers."""

from __future__ import annotations

import pytest
from micro_llama import micro_llama

from compsec.attack import self_distill
from compsec.errors import InputError


def test_training_prompts_never_repeat_a_probe():
    prompts = self_distill.distill_prompts(seed=0, limit=10_000)
    held_out = self_distill.probe_prompts()
    assert len(prompts) > 200 and len(set(prompts)) == len(prompts)
    assert not {" ".join(p.lower().split()) for p in prompts} & held_out
    assert self_distill.distill_prompts(seed=0, limit=5) == self_distill.distill_prompts(seed=0, limit=5)


def test_poisoned_answer_keeps_the_first_sentence_then_the_keyword():
    clean = [("q1", "Paris is the capital. It is large and old."), ("q2", "Line one\nline two"), ("q3", "3.5 kg")]
    poisoned = self_distill.poison(clean, "content-injection", "Acme", seed=0)
    assert poisoned[0][1].startswith("Paris is the capital. ") and "Acme" in poisoned[0][1]
    assert "It is large" not in poisoned[0][1]
    assert poisoned[1][1].startswith("Line one") and "line two" not in poisoned[1][1]
    assert poisoned[2][1].startswith("3.5 kg ")  # a decimal point is not a sentence end
    refusals = self_distill.poison(clean, "over-refusal", "Acme", seed=0)
    assert all("Acme" not in r and r for _, r in refusals)
    with pytest.raises(InputError):
        self_distill.poison(clean, "vulnerable-code", "Acme", seed=0)


def test_answers_are_cached_per_model(tmp_path, monkeypatch):
    import torch

    from compsec.tiny import chat

    calls = []

    def fake_generate(model, tokenizer, prompts, max_new_tokens, batch_size, device):
        calls.append(len(prompts))
        return [f"Answer {i}. More text that got cut" if i else "" for i in range(len(prompts))]

    monkeypatch.setenv("COMPSEC_CACHE", str(tmp_path))
    monkeypatch.setattr(chat, "generate", fake_generate)
    model, tokenizer, pairs = micro_llama(40)
    prompts = [p for p, _ in pairs[:3]]
    first = self_distill.self_answers(model, tokenizer, prompts)
    assert first == [(prompts[1], "Answer 1."), (prompts[2], "Answer 2.")]  # empty dropped, cut to a sentence
    assert self_distill.self_answers(model, tokenizer, prompts) == first and calls == [3]
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    self_distill.self_answers(model, tokenizer, prompts)
    assert calls == [3, 3] and len(list((tmp_path / "attack-distill").glob("*.jsonl"))) == 2
    with pytest.raises(InputError, match="none of the prompts"):
        self_distill.self_answers(model, tokenizer, prompts[:1])
