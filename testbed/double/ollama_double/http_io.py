"""HTTP plumbing of the API handlers: request bodies, replies and NDJSON streams.

A mixin of server.Handler (a BaseHTTPRequestHandler), kept apart from the
endpoint modules so that they hold only Ollama's behaviour.  Replies use Go's
JSON encoding; a stream is chunked NDJSON whose first chunk sends the 200
header, as gin's c.Stream does.
"""

from __future__ import annotations

import json

from .gofmt import go_json


class ClientGone(Exception):
    pass


class HttpIO:
    """Reading and answering one request with BaseHTTPRequestHandler's rfile, wfile and headers."""

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def read_json(self) -> dict:
        raw = self.read_body()
        if not raw.strip():
            raise ValueError("missing request body")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid character at offset {e.pos}: {e.msg}") from None
        if not isinstance(data, dict):
            raise ValueError("json: cannot unmarshal into Go value of type object")
        return data

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def text(self, status: int, s: str) -> None:
        self._send(status, "text/plain; charset=utf-8", s.encode())

    def json(self, status: int, obj) -> None:
        self._send(status, "application/json; charset=utf-8", go_json(obj).rstrip(b"\n"))

    def empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def chunk(self, obj) -> None:
        """Write one NDJSON line; the first one sends the 200 header (gin c.Stream)."""
        if not self._streaming:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._streaming = True
        data = go_json(obj)
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            raise ClientGone() from e

    def end_stream(self) -> None:
        if self._streaming:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True

    def stream_error(self, msg: str, status: int = 500) -> None:
        """streamResponse: an error before any content becomes a JSON error response."""
        if self._streaming:
            self.chunk({"error": msg})
            self.end_stream()
        else:
            self.json(status, {"error": msg})
