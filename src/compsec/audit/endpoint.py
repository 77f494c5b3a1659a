"""An OpenAI-compatible chat endpoint as an audit backend (httpx on asyncio, ``concurrency`` requests in flight).

``http://127.0.0.1:8000/v1`` is called as ``POST {url}/chat/completions`` with
``{"model", "messages": [{"role": "user", "content": prompt}], "max_tokens", "temperature": 0}``; the answer
is ``choices[0].message.content`` and ``finish_reason == "length"`` marks it truncated. Endpoints cannot score
text, so utility, refusal margins and KL are not measured for them.

Every request is bounded (:mod:`compsec.audit.endpoint_client`): a prompt that gets no answer comes back as a
:class:`~compsec.audit.backend.Generation` with ``error`` set, beside the batch's answers, never raising; when
the circuit breaker opens, :attr:`EndpointBackend.stopped` says why, in-flight requests are cancelled and the
batch's other prompts come back unanswered. A variant whose server hangs thus stops within
ceil(endpoint_breaker / concurrency) x endpoint_timeout seconds (the defaults: one deadline).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from compsec.audit.backend import Fault, Generation
from compsec.audit.endpoint_client import ChatClient, EndpointLimits
from compsec.errors import CompsecError

PREFLIGHT_PROMPT = "Reply with the word OK."


class EndpointBackend:
    """Greedy chat completions from ``url`` with at most ``concurrency`` requests in flight."""

    label = "endpoint"

    def __init__(self, url: str, model_name: str, max_new_tokens: int, concurrency: int,
                 limits: EndpointLimits | None = None):
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.name = url
        self.client = ChatClient(url, model_name, max_new_tokens, limits or EndpointLimits())
        self.concurrency = concurrency

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def stopped(self) -> str | None:
        """Why this variant stopped (the circuit breaker's reason), or None while it may go on."""
        return self.client.breaker.reason

    def generate(self, prompts: list[str]) -> list[Generation]:
        """One Generation per prompt, in prompt order; failed or unsent ones carry ``error``."""
        return run_coroutine(self._generate(prompts))

    def preflight(self) -> None:
        """One tiny request; CompsecError naming the variant and URL when it gets no answer."""
        async def one() -> Generation:
            async with self.client.session() as http:
                return await self.client.complete(http, PREFLIGHT_PROMPT, [], max_tokens=1)

        answer = run_coroutine(one())
        if answer.error:
            raise CompsecError(f"endpoint variant {self.name} did not answer a preflight request: {answer.error}; "
                               "fix the server or the URL, then rerun (no model was run, nothing was written)")

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> None:
        return None

    def next_token_logprobs(self, texts: list[str]) -> None:
        return None

    async def _generate(self, prompts: list[str]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(prompts)
        faults: list[list[Fault]] = [[] for _ in prompts]
        queue = iter(range(len(prompts)))
        async with self.client.session() as http:
            async def worker() -> None:
                for i in queue:
                    if self.stopped:
                        return
                    results[i] = await self.client.complete(http, prompts[i], faults[i])

            tasks = {asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(prompts)))}
            try:
                while tasks and not self.stopped:
                    done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        unanswered = f"not answered: {self.stopped}"
        return [r or Generation("", error=unanswered, faults=tuple(f)) for r, f in zip(results, faults)]


def run_coroutine(coroutine):
    """Run ``coroutine`` to its end from synchronous code (in a helper thread when a loop already runs here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
