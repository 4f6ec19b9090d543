"""A real HTTP receiver for webhook tests: a `http.server` on 127.0.0.1 in a thread.

It records every request as it arrived (raw body bytes and headers, for signature checks) and
answers each one by the next entry of its script (then 200):
an HTTP status; `HANG` (say nothing until the test ends); `("redirect", url)`; or `HUGE`
(200 with a 10 MB body).
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"
HUGE = "huge"
TEN_MB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    script: deque = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def answer(self, *entries: Any) -> None:
        self.script.extend(entries)

    def signature(self, index: int = -1) -> str:
        return self.requests[index].headers["Stripe-Signature"]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                entry = receiver.script.popleft() if receiver.script else 200
                # The sender may stop reading, as it should past its cap.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._respond(entry)

            def _respond(self, entry: Any) -> None:
                if entry == HANG:
                    receiver.released.wait(30)
                    return
                if entry == HUGE:
                    self.send_response(200)
                    self.send_header("Content-Length", str(TEN_MB))
                    self.end_headers()
                    chunk = b"x" * 65536
                    for _ in range(TEN_MB // len(chunk)):
                        self.wfile.write(chunk)
                    return
                if isinstance(entry, tuple) and entry[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", entry[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"received": true}'
                self.send_response(entry)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
