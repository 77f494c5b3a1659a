"""A real OpenAI-compatible HTTP server on 127.0.0.1 (ephemeral port, threads) that misbehaves on request.

``FaultyServer(behaviour)`` answers every ``POST .../chat/completions`` by calling ``behaviour(reply, n)``
where ``n`` counts requests from 1 and ``reply`` has ``prompt``, ``first`` (True on a prompt's first
request), ``ok()``, ``status(code, headers)``, ``raw(bytes)``, ``drop()``, ``slow_body()``, ``silence()`` and
``stream(prefix, fill, size, suffix)``. Every loop is bounded (by the server's stop event, a byte budget and
MAX_HANG_S); leaving the ``with`` block (or the ``faulty_server`` fixture) stops the server and its threads.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Sure, here is how: first, gather the parts you need and read the manual."
MAX_HANG_S = 30.0  # no handler outlives this, whatever the client does


def chat_body(content: str, finish: str = "stop") -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": finish}]}).encode("utf-8")


class Reply:
    """What a behaviour can do with one request (the handler, the server's stop event)."""

    def __init__(self, handler: BaseHTTPRequestHandler, stopping: threading.Event, prompt: str, first: bool):
        self.handler, self.stopping, self.prompt, self.first = handler, stopping, prompt, first

    def ok(self, content: str = ANSWER) -> None:
        self.raw(chat_body(content))

    def raw(self, data: bytes, status: int = 200, headers: dict | None = None) -> None:
        self.handler.send_response(status)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                           **(headers or {})}.items():
            self.handler.send_header(key, value)
        self.handler.end_headers()
        self.handler.wfile.write(data)

    def status(self, code: int, headers: dict | None = None) -> None:
        self.raw(json.dumps({"error": {"message": f"fault {code}"}}).encode(), code, headers)

    def drop(self) -> None:
        """Close the connection without a word."""
        self.handler.close_connection = True
        self.handler.connection.shutdown(socket.SHUT_RDWR)

    def _open_ended(self) -> None:
        self.handler.close_connection = True
        self.handler.send_response(200)
        self.handler.send_header("Content-Type", "application/json")
        self.handler.send_header("Connection", "close")
        self.handler.end_headers()

    def silence(self) -> None:
        """Headers, then nothing until the server stops."""
        self._open_ended()
        self.handler.wfile.flush()
        self.stopping.wait(MAX_HANG_S)

    def stream(self, prefix: bytes, fill: bytes, size: int, suffix: bytes, pause_s: float = 0.0) -> None:
        """A body with no Content-Length: prefix, ``fill`` repeated up to ``size`` bytes, suffix (stops early
        when the client goes away, the server stops or MAX_HANG_S passes)."""
        self._open_ended()
        deadline = time.monotonic() + MAX_HANG_S
        sent = 0
        try:
            self.handler.wfile.write(prefix)
            while sent < size and not self.stopping.is_set() and time.monotonic() < deadline:
                self.handler.wfile.write(fill)
                sent += len(fill)
                if pause_s:
                    time.sleep(pause_s)
            self.handler.wfile.write(suffix)
        except OSError:
            pass  # the client hung up: what a bounded client does

    def slow_body(self) -> None:
        """An endless JSON string at about 100 KB/s (10 KB every 0.1 s)."""
        self.stream(b'{"choices": [{"message": {"content": "', b"x" * 10_000, 10**12, b'"}}]}', pause_s=0.1)


class FaultyServer:
    """See the module docstring; ``requests`` counts POSTs, ``prompts`` lists them in arrival order."""

    def __init__(self, behaviour):
        self.behaviour, self.requests, self.prompts = behaviour, 0, []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.errors: list[str] = []  # handler errors, kept for the test instead of printed
        self.server.handle_error = lambda request, address: self.errors.append(traceback.format_exc())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                try:
                    prompt = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    prompt = prompt["messages"][-1]["content"]
                except (OSError, ValueError):  # the client cancelled mid-request (its breaker opened)
                    return
                with owner.lock:
                    owner.requests += 1
                    n, first = owner.requests, prompt not in owner.prompts
                    owner.prompts.append(prompt)
                reply = Reply(self, owner.stopping, prompt, first)
                try:
                    owner.behaviour(reply, n)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
