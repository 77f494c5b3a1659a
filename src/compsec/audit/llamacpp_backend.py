"""A ``.gguf`` file run by llama.cpp itself (llama-cpp-python, CPU) as an audit backend.

The audit's own tokenizer (the original model's) turns chat-templated text into token ids; llama.cpp is fed
those ids and never tokenizes, so every backend sees the same ids whatever vocabulary the GGUF carries (the
tiny assistant's Metaspace BPE has no exact llama.cpp tokenizer). Generation is greedy: the arg-max of
llama.cpp's next-token logits, one token at a time, until an end-of-sequence id of the tokenizer,
``max_new_tokens`` or the end of the context (the model's training context, at most 2048 tokens); answers are decoded with the tokenizer, special tokens skipped, stripped (as
:class:`compsec.audit.backend.LocalBackend`). Scoring reads llama.cpp's logits at every position
(``logits_all``), one text at a time. The file's vocabulary size must equal the tokenizer's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from compsec.audit.backend import chat_text
from compsec.audit.generation import Generation
from compsec.errors import InputError

DEFAULT_CONTEXT = 2048


def open_llama(path: str | Path, threads: int | None = None, n_ctx: int = DEFAULT_CONTEXT):
    """``llama_cpp.Llama`` on ``path`` (CPU, logits at every position, quiet), its header validated first.

    The context is the model's training context, capped at ``n_ctx`` tokens (prompt and answer together)."""
    from compsec.integrity.gguf_check import read_gguf_header
    from compsec.models.gguf_quantize import _llama_cpp

    metadata = read_gguf_header(path).metadata
    trained = metadata.get(f"{metadata.get('general.architecture', 'llama')}.context_length")
    n_ctx = min(n_ctx, int(trained)) if isinstance(trained, int) and trained > 0 else n_ctx
    llama_cpp = _llama_cpp()
    return llama_cpp.Llama(str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads or min(2, os.cpu_count() or 1),
                           n_gpu_layers=0, logits_all=True, verbose=False)


class LlamaCppBackend:
    """Generation and scoring by llama.cpp on the GGUF at ``path``, with ``tokenizer`` (the original's) ids."""

    def __init__(self, path: str | Path, tokenizer, max_new_tokens: int, threads: int | None = None):
        self.path, self.tokenizer, self.max_new_tokens = Path(path), tokenizer, max_new_tokens
        self.llama = open_llama(self.path, threads)
        self.label = f"llama.cpp {self.path.name}"
        if self.llama.n_vocab() != len(tokenizer):
            self.close()
            raise InputError(f"{self.path}: {self.llama.n_vocab()} tokens in the GGUF vs {len(tokenizer)} in the "
                             "audited model's tokenizer; a GGUF variant must be the same model family")
        eos = getattr(tokenizer, "eos_token_id", None)
        self.stop_ids = {eos} if eos is not None else {self.llama.token_eos()}

    def close(self) -> None:
        """Free llama.cpp's model and context now (not at interpreter exit)."""
        self.llama.close()

    def lm_eval_model(self):
        """This backend as an lm-eval ``LM`` (``compsec lm-eval --variants gguf:...``)."""
        from compsec.bridges.lm_eval_llamacpp import LlamaCppLM

        return LlamaCppLM(self)

    def logits(self, ids: list[int]) -> torch.Tensor:
        """llama.cpp's logits ``[len(ids), vocab]`` (float32) for ``ids`` evaluated from an empty context."""
        if len(ids) > self.llama.n_ctx():
            raise InputError(f"{len(ids)} tokens exceed llama.cpp's context of {self.llama.n_ctx()}")
        self.llama.reset()
        self.llama.eval(ids)
        return torch.from_numpy(np.array(self.llama.scores[: len(ids)], dtype=np.float32))

    def greedy_ids(self, prompt_ids: list[int]) -> list[int]:
        """The new token ids greedy decoding appends to ``prompt_ids`` (the stop id excluded)."""
        self.llama.reset()
        self.llama.eval(prompt_ids)
        new: list[int] = []
        while len(new) < self.max_new_tokens and self.llama.n_tokens < self.llama.n_ctx():
            token = int(np.argmax(self.llama.scores[self.llama.n_tokens - 1]))
            if token in self.stop_ids:
                break
            new.append(token)
            self.llama.eval([token])
        return new

    def generate(self, prompts: list[str]) -> list[Generation]:
        """Greedy answers to ``prompts`` (one at a time), truncation judged as :class:`LocalBackend` does."""
        out = []
        for prompt in prompts:
            text = self.tokenizer.decode(self.greedy_ids(self._ids(chat_text(self.tokenizer, prompt))),
                                         skip_special_tokens=True).strip()
            out.append(Generation(text, len(self._ids(text)) >= self.max_new_tokens))
        return out

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[float]:
        """Summed log-probability (nats) of each continuation after its chat-templated prompt (ids concatenated)."""
        scores = []
        for prompt, continuation in zip(prompts, continuations, strict=True):
            context, target = self._ids(chat_text(self.tokenizer, prompt)), self._ids(continuation)
            logprobs = torch.log_softmax(self.logits(context + target), dim=-1)
            positions = torch.arange(len(context) - 1, len(context) + len(target) - 1)
            scores.append(float(logprobs[positions, torch.tensor(target)].sum()))
        return scores

    def next_token_logprobs(self, texts: list[str]) -> list[torch.Tensor]:
        """Log-softmax next-token distributions at every position of each text, ``[tokens, vocab]`` fp32."""
        return [torch.log_softmax(self.logits(self._ids(text)), dim=-1) for text in texts]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids
