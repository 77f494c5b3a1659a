"""An OpenAI-compatible chat endpoint as an audit backend (stdlib HTTP, a thread pool for concurrency).

``http://127.0.0.1:8000/v1`` is called as ``POST {url}/chat/completions`` with
``{"model", "messages": [{"role": "user", "content": prompt}], "max_tokens", "temperature": 0}``; the answer
is ``choices[0].message.content`` and ``finish_reason == "length"`` marks it truncated. Endpoints cannot score
text, so utility, refusal margins and KL are not measured for them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from compsec.audit.backend import Generation
from compsec.errors import CompsecError


class EndpointBackend:
    """Greedy chat completions from ``url`` with at most ``concurrency`` requests in flight."""

    def __init__(self, url: str, model_name: str, max_new_tokens: int, concurrency: int, timeout_s: float = 120):
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.url = url.rstrip("/") + "/chat/completions"
        self.model_name, self.max_new_tokens = model_name, max_new_tokens
        self.concurrency, self.timeout_s = concurrency, timeout_s

    def generate(self, prompts: list[str]) -> list[Generation]:
        """One completion per prompt, in prompt order."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._complete, prompts))

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> None:
        return None

    def next_token_logprobs(self, texts: list[str]) -> None:
        return None

    def _complete(self, prompt: str) -> Generation:
        body = {"model": self.model_name, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_new_tokens, "temperature": 0}
        request = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                answer = json.loads(reply.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as err:
            raise CompsecError(f"endpoint {self.url} failed ({err}); check that the server is up and "
                               "speaks the OpenAI chat-completions API") from err
        try:
            choice = answer["choices"][0]
            return Generation(str(choice["message"]["content"] or ""), choice.get("finish_reason") == "length")
        except (KeyError, IndexError, TypeError) as err:
            raise CompsecError(f"endpoint {self.url} returned no choices[0].message.content; "
                               "is it an OpenAI-compatible chat endpoint?") from err
