"""The endpoint backend against real misbehaving servers on 127.0.0.1: each fault ends within 2x the deadline,
with the behaviour, the message (URL + what to do) and the counts asserted. No model is loaded here."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import fields

import pytest
from faulty_server import free_port
from hypothesis import given
from hypothesis import strategies as st

from compsec.audit.endpoint import PREFLIGHT_PROMPT, EndpointBackend
from compsec.audit.endpoint_client import parse_answer
from compsec.audit.endpoint_faults import AttemptFailed, retry_after_seconds
from compsec.audit.endpoint_limits import CircuitBreaker, EndpointLimits
from compsec.errors import CompsecError, InputError

DEADLINE = 1.0  # where the deadline is the fault's end (hangs, slow bodies)
PATIENT = 5.0  # where the answer must come (retries): room for busy shared CPUs, the bound is still 2x this
FAST = {"endpoint_timeout": DEADLINE, "endpoint_backoff": 0.02, "endpoint_retries": 3, "endpoint_breaker": 4}
PROMPTS = [f"prompt {i}" for i in range(12)]


def _run(url: str, prompts=PROMPTS, concurrency: int = 4, **limits):
    backend = EndpointBackend(url, "m", 16, concurrency, EndpointLimits(**{**FAST, **limits}))
    started = time.monotonic()
    answers = backend.generate(prompts)
    return backend, answers, time.monotonic() - started


def _faults(answers, kind: str) -> list:
    return [f for a in answers for f in a.faults if f.kind == kind]


@pytest.mark.parametrize("fault", ["slow_body", "silence"])
def test_endless_slow_body_and_headers_then_silence_stop_the_variant_at_the_deadline(faulty_server, fault):
    server = faulty_server(lambda reply, n: getattr(reply, fault)())
    backend, answers, seconds = _run(server.url)
    assert seconds <= 2 * DEADLINE
    assert server.requests < len(PROMPTS)  # the breaker opened after the first wave: the rest were never sent
    failed = _faults(answers, "failed")
    assert len(failed) == 4 and not _faults(answers, "retried")  # the deadline leaves no time to retry
    assert all(a.error for a in answers) and "circuit breaker opened after 4" in backend.stopped
    assert server.url in failed[0].message and "--endpoint-timeout" in failed[0].message


def test_http_500_on_every_fifth_request_is_retried_and_counted(faulty_server):
    server = faulty_server(lambda reply, n: reply.status(500) if n % 5 == 0 else reply.ok())
    backend, answers, seconds = _run(server.url, [f"prompt {i}" for i in range(40)], endpoint_retries=5,
                                     endpoint_timeout=PATIENT)
    assert seconds <= 2 * PATIENT and backend.stopped is None
    assert all(a.error is None for a in answers)
    retried = _faults(answers, "retried")
    assert len(retried) == server.requests // 5 == server.requests - 40 and retried[0].status == 500


def test_a_50_mb_answer_is_cut_at_the_byte_cap_with_bounded_memory(faulty_server):
    cap, size = 1_000_000, 50_000_000
    server = faulty_server(lambda reply, n: reply.stream(b'{"choices": [{"message": {"content": "', b"A" * 65536,
                                                         size, b'"}, "finish_reason": "stop"}]}'))
    tracemalloc.start()
    try:
        _, answers, seconds = _run(server.url, PROMPTS[:2], concurrency=2, max_response_bytes=cap,
                                   endpoint_timeout=PATIENT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds <= 2 * PATIENT and peak < 4 * cap
    assert server.requests == 2 and all(a.error for a in answers)  # too large is not retried
    assert "1000000-byte cap" in answers[0].error and "--max-response-bytes" in answers[0].error


def test_a_long_answer_is_stored_truncated_and_marked(faulty_server):
    server = faulty_server(lambda reply, n: reply.ok("word " * 40_000))
    _, answers, seconds = _run(server.url, PROMPTS[:3], max_stored_chars=1000, endpoint_timeout=PATIENT)
    assert seconds <= 2 * PATIENT
    assert all(len(a.text) == 1000 and a.truncated and a.error is None for a in answers)
    marks = _faults(answers, "truncated")
    assert len(marks) == 3 and "answer of 200000 characters; stored the first 1000" in marks[0].message


def test_dropped_connections_are_retried_and_a_server_that_always_drops_is_named(faulty_server):
    flaky = faulty_server(lambda reply, n: reply.drop() if reply.first else reply.ok())
    _, answers, seconds = _run(flaky.url, endpoint_timeout=PATIENT)
    assert seconds <= 2 * PATIENT and [a.error for a in answers if a.error] == []
    assert len(_faults(answers, "retried")) == len(PROMPTS) == flaky.requests - len(PROMPTS)
    dead = faulty_server(lambda reply, n: reply.drop())
    _, answers, seconds = _run(dead.url, PROMPTS[:1], concurrency=1, endpoint_timeout=PATIENT)
    assert seconds <= 2 * PATIENT and len(_faults(answers, "retried")) == 3 and dead.requests == 4
    assert dead.url in answers[0].error and "connection dropped" in answers[0].error


def test_invalid_utf8_fails_once_per_prompt_with_url_and_hint(faulty_server):
    server = faulty_server(lambda reply, n: reply.raw(b'{"choices": [{"message": {"content": "caf\xe9"}}]}'))
    _, answers, seconds = _run(server.url, PROMPTS[:3], endpoint_timeout=PATIENT)
    assert seconds <= 2 * PATIENT and server.requests == 3  # not retried: the server would say it again
    assert "not UTF-8 (byte 0xe9" in answers[0].error and server.url in answers[0].error
    assert "RFC 8259" in answers[0].error and len(_faults(answers, "failed")) == 3


def test_429_retry_after_is_honoured_up_to_its_cap(faulty_server):
    polite = faulty_server(lambda r, n: r.status(429, {"Retry-After": "1"}) if r.first else r.ok())
    _, answers, seconds = _run(polite.url, PROMPTS[:4], endpoint_timeout=PATIENT)
    assert 1.0 <= seconds <= 2 * PATIENT and all(a.error is None for a in answers)
    assert [f.status for f in _faults(answers, "retried")] == [429] * 4
    greedy = faulty_server(lambda r, n: r.status(429, {"Retry-After": "3600"}) if r.first else r.ok())
    _, answers, seconds = _run(greedy.url, PROMPTS[:4], endpoint_max_retry_after=0.2, endpoint_timeout=PATIENT)
    assert seconds <= 2 * PATIENT and all(a.error is None for a in answers)  # waited the cap, not an hour


def test_preflight_of_a_dead_endpoint_fails_in_seconds_naming_it():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = EndpointBackend(url, "m", 16, 4, EndpointLimits(**FAST))
    started = time.monotonic()
    with pytest.raises(CompsecError, match="preflight") as caught:
        backend.preflight()
    assert time.monotonic() - started <= 2 * DEADLINE
    assert url in str(caught.value) and "is the server running" in str(caught.value)


def test_preflight_sends_one_tiny_request(faulty_server):
    server = faulty_server(lambda reply, n: reply.ok("OK"))
    EndpointBackend(server.url, "m", 16, 4, EndpointLimits(**{**FAST, "endpoint_timeout": PATIENT})).preflight()
    assert server.prompts == [PREFLIGHT_PROMPT]


@given(st.one_of(st.none(), st.text(max_size=40), st.floats(allow_nan=True).map(str)))
def test_retry_after_is_none_or_a_non_negative_number(value):
    seconds = retry_after_seconds(value)
    assert seconds is None or seconds >= 0


@given(st.binary(max_size=200))
def test_any_body_parses_or_fails_with_a_hint(data):
    try:
        text, finish = parse_answer(data)
    except AttemptFailed as err:
        assert err.hint
    else:
        assert isinstance(text, str) and (finish is None or isinstance(finish, str))


@pytest.mark.parametrize("bad", [{"endpoint_timeout": 0}, {"endpoint_retries": -1}, {"max_stored_chars": 0},
                                 {"endpoint_breaker": float("nan")}, {"max_response_bytes": float("inf")},
                                 {"endpoint_retries": 2.5}, {"endpoint_max_retry_after": True}])
def test_limits_out_of_range_name_the_option(bad):
    option = "--" + next(iter(bad)).replace("_", "-")
    with pytest.raises(InputError, match=option):
        EndpointLimits(**bad)


@given(st.sampled_from([f.name for f in fields(EndpointLimits)]),
       st.one_of(st.none(), st.booleans(), st.integers(-5, 10**7), st.floats(), st.text(max_size=5)))
def test_limits_accept_or_refuse_with_input_error_only(name, value):
    try:
        limits = EndpointLimits(**{name: value})
    except InputError as err:
        assert f"--{name.replace('_', '-')}" in str(err)
    else:
        assert getattr(limits, name) == value and value >= 0


@given(st.integers(1, 5), st.lists(st.booleans(), max_size=30))
def test_the_breaker_opens_exactly_at_the_first_run_of_n_failures(limit, outcomes):
    breaker, run, opened_at = CircuitBreaker(limit), 0, None
    for i, ok in enumerate(outcomes):
        breaker.record_success() if ok else breaker.record_failure(f"failure {i}")
        run = 0 if ok else run + 1
        if run >= limit and opened_at is None:
            opened_at = i
        assert (breaker.reason is not None) == (opened_at is not None)  # once open, it stays open
    if opened_at is not None:
        assert breaker.reason.endswith(f"last: failure {opened_at}")
