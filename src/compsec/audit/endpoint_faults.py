"""What can go wrong with one request to an endpoint, whether it is worth retrying, and what to do about it."""

from __future__ import annotations

import email.utils
import math
import time

import httpx

HINTS = {
    "connect": "is the server running, and is the URL its OpenAI /v1 base?",
    "dropped": "the server or a proxy closed the connection; check the server's log",
    "timeout": "raise --endpoint-timeout if the server is only slow, else check it",
    "size": "raise --max-response-bytes if answers this long are expected, else check --max-new-tokens reaches "
            "the server",
    "status": "check the server's log",
    "rate": "the server is rate-limiting: lower --concurrency or raise --endpoint-max-retry-after",
    "client": "is the URL the server's OpenAI /v1 base, and does it serve chat completions?",
    "format": "is it an OpenAI-compatible chat-completions endpoint?",
    "encoding": "the server must send UTF-8 JSON (RFC 8259); fix its encoding",
}


class AttemptFailed(Exception):
    """One attempt's failure: ``what`` happened, the ``hint`` to fix it, whether to retry, HTTP status, Retry-After."""

    def __init__(self, what: str, cause: str, retryable: bool = False, status: int = 0,
                 retry_after: float | None = None):
        super().__init__(what)
        self.what, self.hint, self.retryable = what, HINTS[cause], retryable
        self.status, self.retry_after = status, retry_after


def status_problem(status: int, reason: str, retry_after: float | None) -> AttemptFailed:
    """A non-200 reply: 429 and 5xx are retried (after Retry-After when given), other codes are not."""
    what = f"HTTP {status} {reason}".strip()
    if status == 429:
        return AttemptFailed(what, "rate", True, status, retry_after)
    if status >= 500:
        return AttemptFailed(what, "status", True, status, retry_after)
    return AttemptFailed(what, "client", False, status)


def transport_problem(err: httpx.TransportError) -> AttemptFailed:
    """A connection that could not be made, timed out or broke: always retried (the deadline still rules)."""
    detail = str(err) or type(err).__name__
    if isinstance(err, httpx.TimeoutException):
        return AttemptFailed(f"{type(err).__name__} ({detail})", "timeout", True)
    if isinstance(err, httpx.ConnectError):
        return AttemptFailed(f"cannot connect ({detail})", "connect", True)
    if isinstance(err, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return AttemptFailed(f"connection dropped mid-request ({detail})", "dropped", True)
    return AttemptFailed(f"{type(err).__name__} ({detail})", "connect", True)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return None if math.isnan(seconds) else max(seconds, 0.0)
