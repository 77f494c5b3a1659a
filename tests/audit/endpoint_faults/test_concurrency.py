"""``--concurrency N`` for endpoint variants against a real OpenAI-compatible server on 127.0.0.1: requests
really overlap, never more than N at once, and the answers are those of concurrency 1, in prompt order."""

from __future__ import annotations

import threading
import time

from faulty_server import FaultyServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compsec.audit.endpoint import EndpointBackend
from compsec.audit.endpoint_limits import EndpointLimits

PATIENT = EndpointLimits(endpoint_timeout=30.0, endpoint_backoff=0.02)


class InFlight:
    """A server behaviour that answers each prompt with its own echo after ``hold_s``, counting requests in flight."""

    def __init__(self, hold_s: float):
        self.hold_s, self.now, self.peak, self.lock = hold_s, 0, 0, threading.Lock()

    def __call__(self, reply, n: int) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold_s)
        with self.lock:
            self.now -= 1
        reply.ok(f"echo: {reply.prompt}")


def _answers(url: str, prompts: list[str], concurrency: int) -> list[tuple]:
    backend = EndpointBackend(url, "m", 16, concurrency, PATIENT)
    return [(a.text, a.truncated, a.error) for a in backend.generate(prompts)]


def test_four_requests_overlap_and_the_answers_equal_one_at_a_time():
    prompts = [f"prompt {i}" for i in range(8)]
    one, four = InFlight(0.3), InFlight(0.3)
    with FaultyServer(one) as serial, FaultyServer(four) as parallel:
        alone = _answers(serial.url, prompts, concurrency=1)
        together = _answers(parallel.url, prompts, concurrency=4)
    assert together == alone == [(f"echo: {p}", False, None) for p in prompts]
    assert one.peak == 1 and four.peak == 4  # 0.3 s per answer: the four workers' requests are all in flight


def test_requests_in_flight_never_exceed_the_bound():
    behaviour = InFlight(0.02)
    with FaultyServer(behaviour) as server:
        @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(concurrency=st.integers(1, 6), count=st.integers(1, 10))
        def bounded(concurrency: int, count: int) -> None:
            behaviour.peak = 0
            prompts = [f"p{concurrency}-{i}" for i in range(count)]
            assert _answers(server.url, prompts, concurrency) == [(f"echo: {p}", False, None) for p in prompts]
            assert 1 <= behaviour.peak <= min(concurrency, count)

        bounded()
