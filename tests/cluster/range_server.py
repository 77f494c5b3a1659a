"""A local HTTP server that honours single Range requests (python's http.server does not), counting the bytes it
sends, to stand in for a remote checkpoint store in the scan-many tests."""

from __future__ import annotations

import os
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # fsspec sends hundreds of concurrent Range requests; the default backlog is 5
    daemon_threads = True


class RangeServer:
    """Serves ``root`` on 127.0.0.1; ``url(name)``; ``sent`` bytes of bodies so far; ``fail_next`` requests
    answered 503 first (a transient error); ``etag`` adds an ETag header (the file's size and mtime)."""

    def __init__(self, root: Path, etag: bool = False):
        self.root, self.etag, self.sent, self.fail_next, self.lock = Path(root), etag, 0, 0, threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = Path(self.translate_path(self.path))
                with server.lock:
                    failing = server.fail_next > 0
                    server.fail_next -= failing
                if failing or not path.is_file():
                    self.send_error(503 if failing else 404)
                    return
                size = path.stat().st_size
                begin, end, status = 0, size, 200
                match = RANGE.match(self.headers.get("Range", ""))
                if match:
                    begin = int(match[1])
                    end = min(size, int(match[2]) + 1) if match[2] else size
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(end - begin))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {begin}-{end - 1}/{size}")
                if server.etag:
                    stat = os.stat(path)
                    self.send_header("ETag", f'"{stat.st_size}-{stat.st_mtime_ns}"')
                self.end_headers()
                if body:
                    with path.open("rb") as handle:
                        handle.seek(begin)
                        data = handle.read(end - begin)
                    self.wfile.write(data)
                    with server.lock:
                        server.sent += len(data)

        return Handler
