"""lm-eval's ``LM`` interface over :class:`compsec.audit.llamacpp_backend.LlamaCppBackend` (GGUF variants).

lm-eval's own ``gguf`` model talks to a llama.cpp *server*; this one runs the file in process, with the audit
tokenizer's ids, so ``compsec lm-eval MODEL --variants gguf:q4_k_m`` scores exactly what ``compsec audit`` runs.
Context and continuation are tokenized separately and concatenated (as :class:`LocalBackend` scores);
``generate_until`` is greedy and cuts the answer at the first ``until`` string.
"""

from __future__ import annotations

import torch
from lm_eval.api.model import LM


class LlamaCppLM(LM):
    """One GGUF run by llama.cpp, for ``lm_eval.simple_evaluate(model=LlamaCppLM(backend), ...)``."""

    def __init__(self, backend):
        super().__init__()
        self.backend, self.tokenizer = backend, backend.tokenizer

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "compsec")).replace("/", "__")

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _score(self, context: list[int], target: list[int]) -> tuple[float, bool]:
        """Summed log-probability of ``target`` after ``context`` and whether greedy decoding picks all of it."""
        logprobs = torch.log_softmax(self.backend.logits(context + target), dim=-1)
        rows = logprobs[len(context) - 1: len(context) + len(target) - 1]
        picked = rows[torch.arange(len(target)), torch.tensor(target)]
        return float(picked.sum()), bool((rows.argmax(-1) == torch.tensor(target)).all())

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        out = []
        for request in requests:
            context, continuation = request.args
            bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
            out.append(self._score(self._ids(context) or bos, self._ids(continuation)))
        return out

    def loglikelihood_rolling(self, requests) -> list[float]:
        bos = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else 0
        return [self._score([bos], self._ids(request.args[0]))[0] for request in requests]

    def generate_until(self, requests) -> list[str]:
        out = []
        for request in requests:
            context, options = request.args
            limit = int(options.get("max_gen_toks", self.backend.max_new_tokens))
            previous, self.backend.max_new_tokens = self.backend.max_new_tokens, limit
            try:
                text = self.tokenizer.decode(self.backend.greedy_ids(self._ids(context)), skip_special_tokens=True)
            finally:
                self.backend.max_new_tokens = previous
            for stop in options.get("until") or []:
                text = text.split(stop)[0] if stop else text
            out.append(text)
        return out
