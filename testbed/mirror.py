"""The local mirror: a static HTTP server for release tarballs, checksums and registry blobs.

Stands in for the release download site and the model registry, which cannot be reached here.
Supports Range requests (so interrupted downloads can resume, as with the real ones) and writes
an access log, one line per request, that tests count blob downloads from.

Run:  python3 -m testbed.mirror --root DIR --bind 10.201.0.1 --port 8701 --access-log FILE
"""
from __future__ import annotations

import argparse
import http.server
import os
import re
import shutil
import time
from functools import partial

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    access_log_path: str = ""

    def send_head(self):
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
        # " auth" marks a request that carried credentials (never the credentials themselves).
        auth = " auth" if self.headers.get("Authorization") else ""
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.client_address[0]} {self.command} {self.path} {code}{auth}\n"
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
    args = ap.parse_args(argv)
    MirrorHandler.access_log_path = args.access_log
    handler = partial(MirrorHandler, directory=args.root)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    with http.server.ThreadingHTTPServer((args.bind, args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
