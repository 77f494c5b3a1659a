"""The limits of an endpoint variant (:class:`EndpointLimits`) and its :class:`CircuitBreaker` (no httpx here)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from compsec.errors import InputError


@dataclass(frozen=True)
class EndpointLimits:
    """How long, how much and how often an endpoint is asked (names match AuditConfig's fields and options)."""

    endpoint_timeout: float = 120.0
    endpoint_retries: int = 3
    endpoint_backoff: float = 0.5
    endpoint_max_retry_after: float = 30.0
    endpoint_breaker: int = 4
    max_response_bytes: int = 2 * 1024 * 1024
    max_stored_chars: int = 20_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value, positive = getattr(self, f.name), f.name not in ("endpoint_retries", "endpoint_backoff")
            kinds = (int,) if f.type == "int" else (int, float)
            finite = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
            if not finite or value < 0 or (positive and value == 0):
                what = "a whole number" if f.type == "int" else "a finite number"
                raise InputError(f"--{f.name.replace('_', '-')} must be {what} {'> 0' if positive else '>= 0'}, "
                                 f"got {value!r}")

    @classmethod
    def of(cls, config) -> EndpointLimits:
        """The limits held by ``config`` (an AuditConfig or anything with the same attribute names)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


class CircuitBreaker:
    """Opens after ``limit`` failed requests in a row; ``reason`` then says why (None while closed)."""

    def __init__(self, limit: int):
        self.limit, self.failures_in_a_row, self.reason = limit, 0, None

    def record_success(self) -> None:
        self.failures_in_a_row = 0

    def record_failure(self, message: str) -> None:
        self.failures_in_a_row += 1
        if self.reason is None and self.failures_in_a_row >= self.limit:
            self.reason = (f"circuit breaker opened after {self.failures_in_a_row} failed requests in a row "
                           f"(--endpoint-breaker {self.limit}); last: {message}")
