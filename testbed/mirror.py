"""The local mirror: a static HTTP server for release tarballs, checksums and registry blobs.

Stands in for the release download site and the model registry, which cannot be reached here.
Supports Range requests (so interrupted downloads can resume, as with the real ones) and writes
an access log, one line per request, that tests count blob downloads from.

Real Ollama 0.32.15 downloads a blob only after the registry answers its GET with a 307 to another
host name (server/download.go, blobDownload.run: it stops at the first redirect off the registry's
host and needs resp.Location()); a registry answering 200 fails with "no Location header". With
``--blob-host URL``, a blob request whose Host header is not URL's host is answered 307 to URL plus
the same path, and URL's host (an alias of this server) serves the bytes. ``--tls-port`` adds an
HTTPS listener (``--tls-cert``/``--tls-key``) for hosts that reach this server under the default
registry's name; then only that listener redirects.

Run:  python3 -m testbed.mirror --root DIR --bind 10.201.0.1 --port 8701 --access-log FILE \
          [--tls-port 443 --tls-cert CRT --tls-key KEY] [--blob-host http://blobs.registry.testbed:8701]
"""
from __future__ import annotations

import argparse
import http.server
import os
import re
import shutil
import ssl
import threading
import time
from functools import partial
from urllib.parse import urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_BLOB = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    access_log_path: str = ""

    def __init__(self, *args, blob_host: str | None = None, **kwargs):
        self.blob_host = blob_host
        super().__init__(*args, **kwargs)

    def _blob_redirect(self) -> bool:
        """Answer a blob request 307 to the blob host, unless it already came to that host."""
        if not self.blob_host or not _BLOB.match(self.path.split("?")[0]):
            return False
        asked = urlsplit(f"//{self.headers.get('Host', '')}").hostname
        if asked == urlsplit(self.blob_host).hostname:
            return False
        self.send_response(307)
        self.send_header("Location", self.blob_host.rstrip("/") + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def send_head(self):
        self._served = None
        if self._blob_redirect():
            return None
        path = self.translate_path(self.path)
        m = _RANGE.match(self.headers.get("Range", ""))
        if not m or not os.path.isfile(path):
            self._range = None
            return super().send_head()
        size = os.path.getsize(path)
        start, end = int(m.group(1)), int(m.group(2) or size - 1)
        if start >= size or end < start:
            self.send_error(416, "Requested Range Not Satisfiable")
            return None
        end = min(end, size - 1)
        f = open(path, "rb")
        f.seek(start)
        self._range = end - start + 1
        self._served = f"{start}-{end}"
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(self._range))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return f

    def copyfile(self, source, outputfile):
        if getattr(self, "_range", None) is None:
            return super().copyfile(source, outputfile)
        shutil.copyfileobj(_Limited(source, self._range), outputfile)

    def log_request(self, code="-", size="-"):
        # " bytes=<first>-<last>": what a 206 served; " auth": the request carried credentials (never
        # the credentials themselves).
        served = f" bytes={self._served}" if getattr(self, "_served", None) else ""
        auth = " auth" if self.headers.get("Authorization") else ""
        line = (f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.client_address[0]} {self.command} {self.path} "
                f"{code}{served}{auth}\n")
        with open(self.access_log_path, "a") as log:
            log.write(line)


class _Limited:
    def __init__(self, f, n):
        self.f, self.n = f, n

    def read(self, size=-1):
        if self.n <= 0:
            return b""
        data = self.f.read(self.n if size < 0 else min(size, self.n))
        self.n -= len(data)
        return data


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--access-log", required=True)
    ap.add_argument("--blob-host", help="base URL (an alias of this server) that blob requests redirect to")
    ap.add_argument("--tls-port", type=int, help="also serve HTTPS here (needs --tls-cert and --tls-key)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args(argv)
    MirrorHandler.access_log_path = args.access_log
    # With an HTTPS listener, only it redirects blobs (real Ollama comes in there under the registry's
    # name); the plain port keeps serving the control node and the double directly.
    redirecting = partial(MirrorHandler, directory=args.root, blob_host=args.blob_host)
    direct = partial(MirrorHandler, directory=args.root) if args.tls_port else redirecting
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer.daemon_threads = True
    # Like a real registry under a fleet's load: socketserver's default backlog is 5 connections.
    http.server.ThreadingHTTPServer.request_queue_size = 256
    servers = [http.server.ThreadingHTTPServer((args.bind, args.port), direct)]
    if args.tls_port:
        tls = http.server.ThreadingHTTPServer((args.bind, args.tls_port), redirecting)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake happens in each request's thread, on its first read: done in accept(), one slow
        # client on a shaped link held up every other connection.
        tls.socket = context.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(tls)
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
