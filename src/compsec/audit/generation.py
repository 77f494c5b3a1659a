"""What a backend returns for one prompt: the :class:`Generation` and the :class:`Fault` events on its way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """Something that went wrong on the way to one response (an endpoint's retry, failure, truncation...).

    ``kind`` is one of ``retried`` (the request was sent again), ``failed`` (no answer: retries exhausted or
    not retryable), ``truncated`` (the answer was cut to the stored-text cap); ``message`` names the URL and
    says what to do; ``attempt`` counts from 1; ``status`` is the HTTP status (0 when there was none).
    """

    kind: str
    message: str
    attempt: int = 1
    status: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Generation:
    """One response; ``truncated`` is True when generation stopped at the token limit (or the text was cut).

    ``error`` is set (and ``text`` empty) when no answer came back; ``faults`` lists what happened on the way.
    """

    text: str
    truncated: bool = False
    error: str | None = None
    faults: tuple[Fault, ...] = ()
