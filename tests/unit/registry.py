"""A real static registry on 127.0.0.1 for unit tests: ``testbed.models.publish_models`` output served
by http.server, with switches for honouring Range, redirecting blobs (as registry.ollama.ai does to
its CDN) and counting what was sent."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ollama_deploy.control import modelinfo
from testbed.models import MIB, MT_MODEL


class _Handler(SimpleHTTPRequestHandler):
    """Static files; ``bytes=a-b`` / ``bytes=a-`` ranges answered with 206 unless the
    server ignores Range; blobs optionally 307-redirected to /cdn/...; bytes sent counted."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        if srv.redirect_blobs and "/blobs/" in self.path and not self.path.startswith("/cdn/"):
            self.send_response(307)
            self.send_header("Location", "/cdn" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = Path(self.translate_path(self.path.removeprefix("/cdn")))
        if not path.is_file():
            self.send_error(404, "File not found")
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if m and srv.honour_range:
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        sent = 0
        try:
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(left, 64 * 1024))
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: that is what the ignore-Range test wants
        finally:
            srv.sent.append((self.path, sent))


class Registry:
    def __init__(self, root: Path, honour_range: bool = True, redirect_blobs: bool = False):
        self.root = root
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.httpd.honour_range = honour_range
        self.httpd.redirect_blobs = redirect_blobs
        self.httpd.log = []
        self.httpd.sent = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def blob_requests(self) -> list[tuple[str, str | None]]:
        return [(p, r) for p, r in self.httpd.log if "/blobs/" in p and not p.startswith("/cdn")]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def publish_blob(root: Path, ns: str, model: str, tag: str, blob_path: Path) -> None:
    """Add a one-layer model (``blob_path`` as its GGUF) to the registry layout."""
    h = hashlib.sha256()
    with open(blob_path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    repo = root / "v2" / ns / model
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "manifests").mkdir(parents=True, exist_ok=True)
    blob_path.replace(repo / "blobs" / digest)
    manifest = {"schemaVersion": 2, "mediaType": modelinfo.MT_MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": digest, "size": 0},
                "layers": [{"mediaType": MT_MODEL, "digest": digest, "size": (repo / "blobs" / digest).stat().st_size}]}
    (repo / "manifests" / tag).write_text(json.dumps(manifest))


BIG_TOKENS = [f"tok_{i:07d}_padding" for i in range(200_000)]  # 8 + 20 bytes each: ~5.3 MiB of header
