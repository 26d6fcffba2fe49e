"""A real HTTP receiver of webhooks on 127.0.0.1, in a thread of the test process.

``Receiver`` records every request it gets (``requests``: headers, body, the
time it came) and answers as ``answer`` says: a function of the parsed body
returning a status, or ``("sleep", seconds)`` to answer 200 only after that
long (a receiver that times out).  ``hold(predicate)`` keeps requests whose
body matches waiting until ``release()``: a slow receiver for some
conversations only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    at: float
    status: int  # what the receiver answered (after a sleep, if it slept)

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw)
        return data


Answer = Callable[[dict[str, Any]], "int | tuple[str, float]"]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answer: Answer = lambda body: 200
        self._lock = threading.Lock()
        self._held: Callable[[dict[str, Any]], bool] | None = None
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                held = receiver._held
                if held is not None and held(body):
                    receiver._release.wait(10)
                with receiver._lock:
                    answer = receiver.answer(body)
                    status = 200 if isinstance(answer, tuple) else answer
                    got = Received(dict(self.headers.items()), raw, time.time(), status)
                    receiver.requests.append(got)
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def hold(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        self._release.clear()
        self._held = predicate

    def release(self) -> None:
        self._held = None
        self._release.set()

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests]

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of the requests answered 2xx, in the order they came."""
        with self._lock:
            return [r.body for r in self.requests if 200 <= r.status < 300]
