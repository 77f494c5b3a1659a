"""The ``faulty_server`` fixture: misbehaving OpenAI-compatible servers that stop when the test ends."""

from __future__ import annotations

import pytest
from faulty_server import FaultyServer


@pytest.fixture
def faulty_server():
    """``faulty_server(behaviour)`` starts a server that the test's end stops."""
    started = []

    def start(behaviour) -> FaultyServer:
        server = FaultyServer(behaviour).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)
