"""Greedy answers for many prompts at once, with the work of each batch shrinking as its answers finish.

``transformers``' ``generate`` keeps a finished row in the batch until the longest answer ends, and a batch of
prompts in arrival order pads every prompt to the longest one. On CPU, where a forward pass costs in
proportion to the rows it holds, both waste most of an audit's time: a safety-tuned model's refusals end
after ~8 tokens while its answers run to the token limit. Here prompts are batched by length (each batch
pads little) and a row leaves the batch, and its KV cache, the step its end-of-sequence token appears.

The arithmetic per row is what ``generate`` does (left padding, position ids counted from the first real
token, greedy arg-max, stop at ``eos_token_id`` or after ``max_new_tokens``), so the answers equal the
one-prompt-at-a-time ones; ``tests/audit/test_greedy.py`` checks it against ``generate`` with batch size 1.
"""

from __future__ import annotations

import inspect

import torch


def greedy_answers(model, tokenizer, texts: list[str], max_new_tokens: int, batch_size: int,
                   device: str | torch.device = "cpu") -> list[str]:
    """Decoded greedy continuations of the already templated ``texts``, in their order (special tokens
    skipped, surrounding whitespace stripped, as :func:`compsec.tiny.chat.generate` returns them)."""
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be positive")
    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer has no pad token; set tokenizer.pad_token = tokenizer.eos_token first")
    rows = [tokenizer(text, add_special_tokens=False).input_ids for text in texts]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    answers: dict[int, list[int]] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        answers.update(zip(chunk, _decode_batch(model, [rows[i] for i in chunk], max_new_tokens,
                                                tokenizer.pad_token_id, tokenizer.eos_token_id, device)))
    decoded = tokenizer.batch_decode([answers[i] for i in range(len(rows))], skip_special_tokens=True)
    return [text.strip() for text in decoded]


@torch.inference_mode()
def _decode_batch(model, rows: list[list[int]], max_new_tokens: int, pad_id: int, eos_id: int | None,
                  device) -> list[list[int]]:
    """Greedy new tokens for each prompt of ``rows`` (token ids), finished rows dropped as they end."""
    from transformers import DynamicCache

    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    cache = DynamicCache(config=model.config)
    accepted = inspect.signature(model.forward).parameters
    # transformers 5.24 renamed the cache argument (past_key_values still works there, with a warning)
    extra = {"cache" if "cache" in accepted else "past_key_values": cache}
    if "logits_to_keep" in accepted:  # only the last position's logits are needed (as generate asks)
        extra["logits_to_keep"] = 1
    alive = torch.arange(len(rows), device=device)  # the original row of each row still in the batch
    produced: list[list[int]] = [[] for _ in rows]
    for _ in range(max_new_tokens):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                       **extra).logits[:, -1]
        tokens = logits.argmax(dim=-1)
        for row, token in zip(alive.tolist(), tokens.tolist()):
            produced[row].append(token)
        keep = tokens != eos_id if eos_id is not None else torch.ones_like(tokens, dtype=torch.bool)
        if not bool(keep.any()):
            break
        if not bool(keep.all()):
            index = keep.nonzero().squeeze(-1)
            cache.batch_select_indices(index)
            alive, tokens, mask, positions = alive[index], tokens[index], mask[index], positions[index]
        ids = tokens.unsqueeze(-1)
        mask = torch.cat([mask, mask.new_ones(len(ids), 1)], dim=-1)
        positions = positions[:, -1:] + 1
    return produced
