"""A real HTTP receiver for the webhook tests: a threaded server on 127.0.0.1 that records every
request (path, headers, body), checks its signature against the secret of its path, and answers
500 to the first `fail_first` requests (then 200)."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from webhooks.signing import HEADER, signature_verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    signed: bool

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)  # path -> secret
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def accepted(self, path: str | None = None) -> list[Received]:
        """The requests answered 200 (to `path`), in the order they arrived."""
        with self.lock:
            return [r for r in self.received if r.answered == 200 and path in (None, r.path)]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted(path)) < count:
            assert time.monotonic() < deadline, f"{len(self.accepted(path))} of {count} arrived"
            time.sleep(0.1)


def start(receiver: Receiver) -> Receiver:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            secret = receiver.secrets.get(self.path, "")
            signed = bool(secret) and signature_verify(
                secret=secret, header=self.headers.get(HEADER, ""), body=body, now=time.time()
            )
            with receiver.lock:
                failing = receiver.fail_first > 0
                if failing:
                    receiver.fail_first -= 1
                code = 500 if failing or not signed else 200
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), body, code, signed)
                )
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def stop(receiver: Receiver) -> None:
    if receiver.server is not None:
        receiver.server.shutdown()
        receiver.server.server_close()
