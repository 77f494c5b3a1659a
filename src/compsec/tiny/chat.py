"""Batched greedy generation through a model's chat template (left padding, one ``generate`` per batch)."""

from __future__ import annotations

import torch


def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = 48,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    threads: int | None = None,
) -> list[str]:
    """Answer each user prompt greedily; returns the decoded responses, in prompt order.

    ``model`` is any causal LM already on ``device`` (fp32, quantized...), ``tokenizer`` one with a chat
    template. Prompts are wrapped as single user turns, left-padded in batches of ``batch_size`` and decoded
    without special tokens, stripped of surrounding whitespace. ``threads`` sets torch's CPU thread count
    for the call (restored afterwards); None keeps the current setting. On shared CPUs pass
    ``compsec.tiny.train.idle_cores()``: oversubscribed threads made generation ~10x slower in our runs.
    """
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be positive")
    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer has no pad token; set tokenizer.pad_token = tokenizer.eos_token first")
    texts = [_chat_text(tokenizer, prompt) for prompt in prompts]
    responses: list[str] = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            responses += _generate_batch(model, tokenizer, batch, max_new_tokens, device)
    finally:
        torch.set_num_threads(previous)
    return responses


def _chat_text(tokenizer, prompt: str) -> str:
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@torch.inference_mode()
def _generate_batch(model, tokenizer, texts: list[str], max_new_tokens: int, device) -> list[str]:
    previous_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    finally:
        tokenizer.padding_side = previous_side
    output = model.generate(
        **batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        temperature=None, top_p=None, top_k=None,
    )
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
