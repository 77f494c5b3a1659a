"""Behavioural contrast: how far a model's next-token distributions move when its weights change.

``KL(original || changed)`` is averaged over every real (non-padding) token position of a small generic text
set: the benign chat examples of :func:`compsec.attack.data.clean_pairs` rendered through the model's chat
template.  :func:`tensor_sensitivity` applies it with *one* tensor quantized at a time, the ranking that safety
-aware mixed precision (:mod:`compsec.defend.mixed`) keeps in higher precision; :func:`kl_to` measures what a
defence (noise, clipping) costs in full precision.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from compsec.errors import InputError


@dataclass(frozen=True)
class TextBatch:
    """Right-padded token ids ``(n, length)`` and their attention mask (1 = real token)."""

    ids: torch.Tensor
    mask: torch.Tensor


def generic_texts(tokenizer, n: int = 24, seed: int = 0) -> list[str]:
    """``n`` benign prompt/answer texts, chat-templated when the tokenizer has a template."""
    from compsec.attack.data import clean_pairs, training_subset

    pairs = training_subset(clean_pairs(seed), n, seed)
    if getattr(tokenizer, "chat_template", None):
        return [tokenizer.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                                              tokenize=False) for p, r in pairs]
    return [f"{p}\n{r}" for p, r in pairs]


def encode_texts(tokenizer, texts: list[str], max_length: int = 96, device="cpu") -> TextBatch:
    """Tokenize ``texts`` (truncated to ``max_length`` tokens) into one right-padded batch on ``device``."""
    if tokenizer is None:
        raise InputError("behavioural contrast needs the model's tokenizer; put its files next to the weights")
    rows = [tokenizer(t, add_special_tokens=False).input_ids[:max_length] for t in texts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return TextBatch(ids, mask)


@torch.no_grad()
def token_log_probs(model, batch: TextBatch) -> torch.Tensor:
    """Log-probabilities ``(tokens, vocab)`` float32 at every real position of ``batch``."""
    logits = model(input_ids=batch.ids, attention_mask=batch.mask).logits.float()
    return torch.log_softmax(logits[batch.mask.bool()], dim=-1)


@torch.no_grad()
def kl_to(reference: torch.Tensor, model, batch: TextBatch) -> float:
    """Mean over tokens of ``KL(reference || model)`` in nats; ``reference`` from :func:`token_log_probs`."""
    changed = token_log_probs(model, batch)
    return float((reference.exp() * (reference - changed)).sum(dim=-1).mean())


@contextmanager
def swapped(model, replacements: dict[str, torch.Tensor]):
    """Within the block, each parameter ``name`` of ``model`` holds ``replacements[name]`` (restored after)."""
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in replacements}
    try:
        with torch.no_grad():
            for n, value in replacements.items():
                params[n].copy_(value.to(device=params[n].device, dtype=params[n].dtype))
        yield model
    finally:
        with torch.no_grad():
            for n, value in saved.items():
                params[n].copy_(value)


def tensor_sensitivity(model, batch: TextBatch, fmt, names: list[str]) -> dict[str, float]:
    """``name -> KL(original || model with only that tensor quantized by fmt)`` (nats per token)."""
    reference = token_log_probs(model, batch)
    params = dict(model.named_parameters())
    result = {}
    for name in names:
        w = params[name].detach()
        rounded = fmt.dequantize(fmt.quantize(w.float().cpu()))
        with swapped(model, {name: rounded}):
            result[name] = kl_to(reference, model, batch)
    return result
