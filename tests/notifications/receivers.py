"""Local receivers for the notification tests: a webhook that checks signatures and can
fail or hold requests, and a redirector."""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from results.notifications import payloads


class Receiver:
    """A threaded HTTP server on 127.0.0.1; ``answer(request_number, body) -> status``."""

    def __init__(self, answer: Callable[[int, dict, dict], tuple[int, dict]]) -> None:
        self.requests: list[dict] = []  # every request, in arrival order: headers, body, status
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    number = len(receiver.requests)
                    record = {"headers": dict(self.headers), "raw": raw, "body": json.loads(raw or b"null"), "status": None}
                    receiver.requests.append(record)
                status, headers = answer(number, record["headers"], record)
                record["status"] = status
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed_correctly(record: dict, secret: str) -> bool:
    headers = {k.lower(): v for k, v in record["headers"].items()}
    expected = payloads.signature(secret, headers[payloads.TIMESTAMP_HEADER.lower()], record["raw"])
    return hmac.compare_digest(expected, headers.get(payloads.SIGNATURE_HEADER.lower(), ""))


def accepted_keys(receiver: Receiver) -> list[str]:
    """Idempotency keys of the requests answered 2xx, duplicates dropped (what a receiver
    de-duplicating by key keeps), in arrival order."""
    keys: list[str] = []
    for record in receiver.requests:
        key = record["body"]["idempotency_key"]
        if record["status"] and 200 <= record["status"] < 300 and key not in keys:
            keys.append(key)
    return keys
