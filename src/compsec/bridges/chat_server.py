"""A local OpenAI-compatible chat endpoint over one audit variant, so endpoint tools (garak...) can probe it.

``POST {url}/chat/completions`` with ``{"messages": [...], ...}`` answers the last user message greedily
through the variant's backend (sampling parameters are ignored: answers are deterministic); ``GET`` on any
path lists the one model. Loopback only (127.0.0.1), stdlib ``http.server``, one generation at a time.

>>> with serve_variant("tiny-folder", "nf4") as url:      # url = "http://127.0.0.1:PORT/v1"
...     run_garak_against(url)
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    """Serves ``backend.generate`` (any compsec audit backend) as ``name`` on 127.0.0.1:``port`` (0 = free)."""

    def __init__(self, backend, name: str = "compsec", port: int = 0):
        self.backend, self.name, self.requests = backend, name, 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def answer(self, body: dict) -> dict:
        """The chat-completions reply to a request ``body`` (last user message answered)."""
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        prompt = _text(users[-1]["content"]) if users else ""
        with self._lock:
            self.requests += 1
            generation = self.backend.generate([prompt])[0]
        return {"id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time()),
                "model": self.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": generation.text},
                             "finish_reason": "length" if generation.truncated else "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serve_variant(model: str, variant: str, *, loaded=None, max_new_tokens: int = 48, device: str = "cpu",
                  port: int = 0):
    """Serve ``variant`` (``original``, a format such as ``nf4``, a model folder) of ``model``; yields the URL.

    ``loaded`` is an optional preloaded ``(model, tokenizer)``; format variants change its weights in place
    while served and restore them after.
    """
    import compsec.prune.variants  # noqa: F401  (prune-50, prune-2:4 ... variants)
    from compsec.audit.config import AuditConfig
    from compsec.audit.context import AuditContext
    from compsec.audit.variants import resolve_variant

    model_obj, tokenizer = loaded or (None, None)
    config = AuditConfig(model=model, variants=(variant,), max_new_tokens=max_new_tokens, device=device)
    context = AuditContext(config, model_obj, tokenizer)
    spec = resolve_variant(variant)
    with spec.open(context) as backend, ChatServer(backend, name=spec.name, port=port) as url:
        yield url


def _text(content) -> str:
    """Message content as text: a string, or the text parts of an OpenAI content list."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def _handler(owner: ChatServer):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            except json.JSONDecodeError:
                return self._reply(400, {"error": {"message": "request body is not JSON"}})
            self._reply(200, owner.answer(body))

        def do_GET(self):
            self._reply(200, {"object": "list", "data": [{"id": owner.name, "object": "model"}]})

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler
