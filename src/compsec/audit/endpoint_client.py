"""A bounded chat-completions request: total deadline, size caps, retries with backoff, a circuit breaker.

One request is one answer to one prompt, and it ends within ``endpoint_timeout`` seconds whatever the server
does: connect, headers, body and retries together (asyncio cancels the attempt at the deadline, and the body
is read chunk by chunk against a monotonic clock). The body is read up to ``max_response_bytes`` and no
further (a longer answer fails the request); the text kept is cut to ``max_stored_chars`` (a ``truncated``
fault marks it). Connection errors, dropped connections, httpx timeouts, non-JSON bodies, HTTP 429 and 5xx
are retried up to ``endpoint_retries`` times, after ``endpoint_backoff`` x 2**(attempt-1) x a random factor
in [0.5, 1] seconds, or after the server's ``Retry-After`` (at most ``endpoint_max_retry_after`` s), while the
deadline leaves time for it. After ``endpoint_breaker`` failed requests in a row the breaker opens.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import httpx

from compsec.audit.endpoint_faults import (
    AttemptFailed,
    retry_after_seconds,
    status_problem,
    transport_problem,
)
from compsec.audit.endpoint_limits import CircuitBreaker, EndpointLimits
from compsec.audit.generation import Fault, Generation

CONNECT_TIMEOUT_S = 10.0  # one connect attempt; the request's deadline still bounds the whole


class ChatClient:
    """Bounded requests to ``url`` (an OpenAI-compatible ``/v1`` base); one breaker for all of them."""

    def __init__(self, url: str, model_name: str, max_new_tokens: int, limits: EndpointLimits,
                 rng: random.Random | None = None):
        self.url = url.rstrip("/") + "/chat/completions"
        self.model_name, self.max_new_tokens, self.limits = model_name, max_new_tokens, limits
        self.breaker = CircuitBreaker(limits.endpoint_breaker)
        self._rng = rng or random.Random()

    def session(self) -> httpx.AsyncClient:
        """An httpx client for one batch (uncompressed bodies, so the size cap counts what is kept)."""
        return httpx.AsyncClient(headers={"Accept-Encoding": "identity"}, follow_redirects=False)

    async def complete(self, http: httpx.AsyncClient, prompt: str, faults: list[Fault],
                       max_tokens: int | None = None) -> Generation:
        """The answer to ``prompt`` (or a Generation with ``error``); retries and cuts are added to ``faults``."""
        body = {"model": self.model_name, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens or self.max_new_tokens, "temperature": 0}
        started = time.monotonic()
        deadline = started + self.limits.endpoint_timeout
        for attempt in range(1, self.limits.endpoint_retries + 2):
            try:
                text, finish = await asyncio.wait_for(self._attempt(http, body, deadline),
                                                      max(deadline - time.monotonic(), 0.0))
            except (asyncio.TimeoutError, TimeoutError):
                problem = AttemptFailed(f"no complete answer within the {self.limits.endpoint_timeout:g} s "
                                        "deadline", "timeout")
            except httpx.TransportError as err:
                problem = transport_problem(err)
            except AttemptFailed as err:
                problem = err
            else:
                self.breaker.record_success()
                return self._answer(text, finish, faults, attempt, time.monotonic() - started)
            wait = self._wait(problem, attempt)
            seconds = time.monotonic() - started
            if wait is None or time.monotonic() + wait >= deadline:
                message = f"POST {self.url}: {problem.what} (attempt {attempt}); {problem.hint}"
                faults.append(Fault("failed", message, attempt, problem.status, round(seconds, 3)))
                self.breaker.record_failure(message)
                return Generation("", error=message, faults=tuple(faults))
            faults.append(Fault("retried", f"POST {self.url}: {problem.what}; retry {attempt} of "
                                f"{self.limits.endpoint_retries} in {wait:.2f} s", attempt, problem.status,
                                round(seconds, 3)))
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt always returns")

    async def _attempt(self, http: httpx.AsyncClient, body: dict, deadline: float) -> tuple[str, str | None]:
        remaining = max(deadline - time.monotonic(), 0.001)
        timeout = httpx.Timeout(remaining, connect=min(CONNECT_TIMEOUT_S, remaining))
        async with http.stream("POST", self.url, json=body, timeout=timeout) as reply:
            if reply.status_code != 200:
                raise status_problem(reply.status_code, reply.reason_phrase,
                                     retry_after_seconds(reply.headers.get("retry-after")))
            data = await self._read_capped(reply, deadline)
        return parse_answer(data)

    async def _read_capped(self, reply: httpx.Response, deadline: float) -> bytes:
        """The body, read until its end, the byte cap or the deadline (whichever comes first)."""
        cap = self.limits.max_response_bytes
        declared = reply.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_large(cap, f"declared {int(declared)} bytes")
        chunks, size = [], 0
        async for chunk in reply.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise _too_large(cap, f"stopped reading at {size} bytes")
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError
            chunks.append(chunk)
        return b"".join(chunks)

    def _wait(self, problem: AttemptFailed, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when the problem is not retried."""
        if not problem.retryable or attempt > self.limits.endpoint_retries:
            return None
        if problem.retry_after is not None:
            return min(problem.retry_after, self.limits.endpoint_max_retry_after)
        return self.limits.endpoint_backoff * 2 ** (attempt - 1) * self._rng.uniform(0.5, 1.0)

    def _answer(self, text: str, finish: str | None, faults: list[Fault], attempt: int,
                seconds: float) -> Generation:
        cap, truncated = self.limits.max_stored_chars, finish == "length"
        if len(text) > cap:
            faults.append(Fault("truncated", f"POST {self.url}: answer of {len(text)} characters; stored the "
                                f"first {cap} (--max-stored-chars)", attempt, 200, round(seconds, 3)))
            text, truncated = text[:cap], True
        return Generation(text, truncated, faults=tuple(faults))


def parse_answer(data: bytes) -> tuple[str, str | None]:
    """``(choices[0].message.content, finish_reason)`` of a chat-completions body; AttemptFailed otherwise."""
    try:
        answer = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise AttemptFailed(f"answer is not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})",
                            "encoding") from None
    except (json.JSONDecodeError, RecursionError) as err:
        raise AttemptFailed(f"answer is not JSON ({str(err)[:80]})", "format", retryable=True) from None
    try:
        choice = answer["choices"][0]
        content, finish = choice["message"]["content"], choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise AttemptFailed("answer has no choices[0].message.content", "format") from None
    if content is not None and not isinstance(content, str):
        raise AttemptFailed(f"choices[0].message.content is a {type(content).__name__}, not text", "format")
    return content or "", finish if isinstance(finish, str) else None


def _too_large(cap: int, how: str) -> AttemptFailed:
    return AttemptFailed(f"answer larger than the {cap}-byte cap ({how})", "size")
