"""Fixtures that run the real test double (``ollama serve``) as a subprocess.

Everything listens on 127.0.0.1: a static model mirror (ThreadingHTTPServer
over ``publish_models`` output, with Range support so resumes can be checked)
and one or more double servers with OLLAMA_MODELS / HOME inside tmp dirs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ollama_deploy.gocompat import OLLAMA_VERSION  # noqa: E402
from testbed.double.package import stage_release  # noqa: E402
from testbed.models import publish_models  # noqa: E402

VERSION = OLLAMA_VERSION
FAST = {"gpu": 400, "cpu": 200}

# A Pascal card on a CUDA 13 driver, as the testbed's fake hardware reports it.
FAKE_SMI_P4000 = """#!/bin/sh
echo "0, 00000000:01:00.0, GPU-9f1c3b2a-5d4e-4f6a-8b7c-0123456789ab, Quadro P4000, 8192, 1, 6.1, 580.95.05"
"""
FAKE_SMI_FAILING = """#!/bin/sh
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2
exit 9
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _MirrorHandler(SimpleHTTPRequestHandler):
    """Static files, plus single-range GETs (``bytes=N-``) answered with 206."""

    def log_message(self, *args):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        self.server.seen.append((self.path, rng))
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if not m:
            return super().send_head()
        path = self.translate_path(self.path)
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404, "File not found")
            return None
        size = os.fstat(f.fileno()).st_size
        start = int(m.group(1))
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return f


class Mirror:
    def __init__(self, root: Path):
        self.root = root
        self.published = {row["name"]: row for row in publish_models(root)}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_MirrorHandler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.httpd.seen = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def blob(self, name: str, media_type: str) -> tuple[str, bytes]:
        ns, rest = name.split("/", 1)
        model, tag = rest.split(":")
        manifest = json.loads((self.root / "v2" / ns / model / "manifests" / tag).read_bytes())
        layer = next(x for x in manifest["layers"] if x["mediaType"] == media_type)
        return layer["digest"], (self.root / "v2" / ns / model / "blobs" / layer["digest"]).read_bytes()


class Ollama:
    """One ``ollama serve`` of the double, with its own models dir and log file."""

    def __init__(self, release: Path, workdir: Path, env: dict | None = None, smi: str | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.release = release
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.models = workdir / "models"
        bindir = workdir / "bin"
        bindir.mkdir(exist_ok=True)
        if smi is not None:
            p = bindir / "nvidia-smi"
            p.write_text(smi)
            p.chmod(0o755)
        self.env = {
            "PATH": str(bindir),  # only the fake nvidia-smi (if any) is discoverable
            "HOME": str(workdir / "home"),
            "OLLAMA_HOST": f"127.0.0.1:{self.port}",
            "OLLAMA_MODELS": str(self.models),
            **(env or {}),
        }
        self.log_path = workdir / "ollama.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(release / "bin" / "ollama"), "serve"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"double exited {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("double did not start:\n" + self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, msg: str) -> list[str]:
        return [line for line in self.log().splitlines() if f'msg="{msg}"' in line or f"msg={msg} " in line]

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in log:\n{self.log()}")

    def post(self, path: str, body: dict, **kw):
        return requests.post(self.url + path, json=body, timeout=kw.pop("timeout", 30), **kw)

    def stream(self, path: str, body: dict) -> list[dict]:
        with requests.post(self.url + path, json=body, stream=True, timeout=30) as r:
            assert r.status_code == 200, r.text
            return [json.loads(line) for line in r.iter_lines() if line]

    def cli(self, *args, host: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {**self.env, "OLLAMA_HOST": host or self.env["OLLAMA_HOST"]}
        return subprocess.run([sys.executable, str(self.release / "bin" / "ollama"), *args], env=env,
                              input=stdin, capture_output=True, text=True, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def mirror(tmp_path_factory):
    m = Mirror(tmp_path_factory.mktemp("mirror"))
    yield m
    m.httpd.shutdown()
    m.httpd.server_close()


@pytest.fixture(scope="session")
def release(tmp_path_factory, mirror):
    return stage_release(tmp_path_factory.mktemp("release"), VERSION, "amd64", mirror.url,
                         tokens_per_s=FAST, load_seconds=0.05)


@pytest.fixture
def start(tmp_path, release):
    """start(env=..., smi=..., release=...) -> a running Ollama; all stopped at teardown."""
    started: list[Ollama] = []

    def _start(env: dict | None = None, smi: str | None = None, rel: Path | None = None) -> Ollama:
        o = Ollama(rel or release, tmp_path / f"srv{len(started)}", env, smi)
        started.append(o)
        return o

    yield _start
    for o in started:
        o.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, release):
    """A CPU-only double shared by the API tests of one module."""
    o = Ollama(release, tmp_path_factory.mktemp("shared"))
    yield o
    o.stop()


@pytest.fixture(scope="module")
def tiny(server):
    """testbed/tiny:latest pulled into the shared server."""
    events = server.stream("/api/pull", {"model": "testbed/tiny"})
    assert events[-1] == {"status": "success"}
    return "testbed/tiny:latest"
