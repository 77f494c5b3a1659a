"""How an audit talks to a loaded model: batched generation, continuation scoring, next-token distributions.

A *backend* is what a variant yields while it is active. :class:`LocalBackend` wraps a causal LM and its
tokenizer (chat template required); :mod:`compsec.audit.endpoint` provides the HTTP one. Backends that cannot
score text (an endpoint) return None from the scoring methods and the runner records no score.
"""

from __future__ import annotations

import torch

from compsec.audit.generation import Fault, Generation
from compsec.errors import InputError

__all__ = ["Fault", "Generation", "LocalBackend", "chat_text", "mean_token_kl"]


def chat_text(tokenizer, prompt: str) -> str:
    """The templated text a chat model sees before answering ``prompt`` (single user turn)."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the model's tokenizer has no chat template; audits need an instruction-tuned model")
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class LocalBackend:
    """Generation and scoring with ``model`` (already on ``device``) and its ``tokenizer``."""

    label = "torch"

    def __init__(self, model, tokenizer, device: str, batch_size: int, max_new_tokens: int):
        if tokenizer is None:
            raise InputError("the model folder has no tokenizer; audits need tokenizer files next to the weights")
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens

    def generate(self, prompts: list[str]) -> list[Generation]:
        """Greedy answers to ``prompts``, batched by length, finished rows leaving the batch
        (:mod:`compsec.audit.greedy`; the answers equal one-prompt-at-a-time ``generate``)."""
        from compsec.audit.greedy import greedy_answers

        templated = [chat_text(self.tokenizer, prompt) for prompt in prompts]
        texts = greedy_answers(self.model, self.tokenizer, templated, self.max_new_tokens, self.batch_size,
                               self.device)
        lengths = [len(self.tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
        return [Generation(t, n >= self.max_new_tokens) for t, n in zip(texts, lengths)]

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[float]:
        """Summed log-probability (nats) of each continuation right after its chat-templated prompt.

        Context and continuation are tokenized separately and concatenated (as the model was trained and as
        lm-eval scores multiple choice). Returns one float per (prompt, continuation) pair.
        """
        contexts = {p: self._ids(chat_text(self.tokenizer, p)) for p in dict.fromkeys(prompts)}
        targets = {c: self._ids(c) for c in dict.fromkeys(continuations)}
        pairs = [(contexts[p], targets[c]) for p, c in zip(prompts, continuations, strict=True)]
        scores = []
        for start in range(0, len(pairs), self.batch_size):
            scores += self._score_batch(pairs[start:start + self.batch_size])
        return scores

    def next_token_logprobs(self, texts: list[str]) -> list[torch.Tensor]:
        """Log-softmax next-token distributions for every position of each text, ``[tokens, vocab]`` fp32 CPU.

        Texts are scored one at a time (no padding), so the result never depends on what else is scored.
        """
        out = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False).input_ids
            logits = self._logits([ids])[0, : len(ids)]
            out.append(torch.log_softmax(logits.float(), dim=-1).cpu())
        return out

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    @torch.inference_mode()
    def _logits(self, rows: list[list[int]]) -> torch.Tensor:
        """Logits ``[batch, max_len, vocab]`` of right-padded ``rows``."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=self.device)
        return self.model(input_ids=ids, attention_mask=mask).logits

    def _score_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        logprobs = torch.log_softmax(self._logits([c + t for c, t in pairs]).float(), dim=-1)
        scores = []
        for row, (context, target) in enumerate(pairs):
            positions = torch.arange(len(context) - 1, len(context) + len(target) - 1, device=logprobs.device)
            token_ids = torch.tensor(target, device=logprobs.device)
            scores.append(float(logprobs[row, positions, token_ids].sum()))
        return scores


def mean_token_kl(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Mean over positions of KL(reference || other) in nats; both are ``[tokens, vocab]`` log-probabilities."""
    if reference.shape != other.shape:
        raise ValueError(f"log-prob shapes differ ({tuple(reference.shape)} vs {tuple(other.shape)}); "
                         "the variant must share the original's tokenizer")
    per_token = (reference.exp() * (reference - other)).sum(dim=-1)
    return float(per_token.mean())
