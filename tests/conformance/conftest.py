"""Conformance suite: the same tests against the test double and against real Ollama 0.32.15.

Every test takes the parametrized fixture ``ollama`` (params ``double`` and ``real``): a factory
``ollama.serve(env) -> Server`` that starts ``ollama serve`` on 127.0.0.1:<free port> with its own
HOME and OLLAMA_MODELS in tmp dirs, writes its stderr (the journal) to ``Server.log_path`` and its
stdout to ``Server.stdout_path``, and stops every server it started at teardown. A test states
what real Ollama does; the ``double`` run shows the double does the same.

Run:  .venv/bin/python -m pytest tests/conformance -q -x        (about 20 s on 2 cores)

The ``real`` param needs the CPU build of real Ollama made by ``testbed.real_ollama``: it calls
``ensure_built()``, which reuses the cached artifact or builds it (that takes long the first time;
a build another process has started is waited for). If it cannot be had, the test fails with one
line; it is never skipped. Models come from the project's mirror (``python -m testbed.mirror``)
serving ``testbed.models`` and ``testbed.real_models`` on loopback; real Ollama only downloads a
blob after a 307 to another host name, hence ``--blob-host http://localhost:<port>``.

Safety: nothing leaves the machine. Real Ollama calls ollama.com at start, so every server (the
double too, for symmetry) runs with OLLAMA_NO_CLOUD=1 and all four proxy variables pointing at a
closed loopback port (Go never proxies loopback addresses, so loopback traffic still works).
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ollama_deploy.gocompat import OLLAMA_VERSION  # noqa: E402
from testbed.double.package import stage_release  # noqa: E402
from testbed.models import publish_models  # noqa: E402
from testbed.real_models import publish_real_models  # noqa: E402

VERSION = OLLAMA_VERSION
CLOSED_PROXY = "http://127.0.0.1:9"  # discard port, nothing listens: any proxied request fails at once
SAFE_ENV = {"OLLAMA_NO_CLOUD": "1", "HTTPS_PROXY": CLOSED_PROXY, "HTTP_PROXY": CLOSED_PROXY,
            "https_proxy": CLOSED_PROXY, "http_proxy": CLOSED_PROXY}
START_TIMEOUT = 30
_ATTR = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\S*)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def slog_attrs(line: str) -> dict:
    """key=value pairs of one slog text line, quoted values unquoted."""
    out = {}
    for k, v in _ATTR.findall(line):
        out[k] = json.loads(v) if v.startswith('"') else v
    return out


def go_map(text: str) -> dict:
    """Parse Go's ``map[K:V K2:V2]`` (values may be ``[a b]`` lists with spaces)."""
    assert text.startswith("map[") and text.endswith("]"), text
    body, out, i = text[4:-1], {}, 0
    while i < len(body):
        colon = body.index(":", i)
        key, j, depth = body[i:colon], colon + 1, 0
        while j < len(body) and (depth or body[j] != " "):
            depth += {"[": 1, "]": -1}.get(body[j], 0)
            j += 1
        out[key] = body[colon + 1:j]
        i = j + 1
    return out


class Mirror:
    """The project's mirror as a subprocess on 127.0.0.1, over both model catalogs."""

    def __init__(self, root: Path):
        self.root = root
        self.published = {r["name"]: r for r in publish_models(root) + publish_real_models(root)}
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.access_log = root.parent / "mirror-access.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.mirror", "--root", str(root), "--bind", "127.0.0.1",
             "--port", str(self.port), "--access-log", str(self.access_log),
             "--blob-host", f"http://localhost:{self.port}"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc)

    def manifest(self, model: str) -> tuple[bytes, dict]:
        raw = (self.root / "v2" / "testbed" / model / "manifests" / "latest").read_bytes()
        return raw, json.loads(raw)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


class Server:
    """One ``ollama serve`` (real or double) with its own HOME, models dir and log files."""

    def __init__(self, kind: str, argv: list[str], workdir: Path, env: dict | None, home: Path | None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home or workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.models = workdir / "models"
        extra = {k: v.replace("{port}", str(self.port)) for k, v in (env or {}).items()}
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "OLLAMA_HOST": f"127.0.0.1:{self.port}",
                    "OLLAMA_MODELS": str(self.models), **SAFE_ENV, **extra}
        self.log_path, self.stdout_path = workdir / "ollama.log", workdir / "stdout.txt"
        self._err, self._out = open(self.log_path, "wb"), open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([*argv, "serve"], env=self.env, stdout=self._out, stderr=self._err,
                                     cwd=workdir)
        try:
            # Both log "vram-based default context" once discovery is done and requests are served.
            self.wait_log('msg="vram-based default context"', START_TIMEOUT)
        except AssertionError:
            self.stop()
            raise

    # -- the journal ---------------------------------------------------------------
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def lines(self, msg: str) -> list[dict]:
        """Parsed slog lines whose msg is ``msg``."""
        return [slog_attrs(x) for x in self.log().splitlines()
                if f'msg="{msg}"' in x or f"msg={msg} " in x or x.endswith(f"msg={msg}")]

    def line(self, msg: str) -> dict:
        found = self.lines(msg)
        assert found, f"no {msg!r} line in the {self.kind} log:\n{self.log()[-4000:]}"
        return found[-1]

    def wait_log(self, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if needle in text:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the {self.kind} log (rc={self.proc.poll()}):\n{self.log()[-4000:]}")

    def server_config(self) -> dict:
        return go_map(self.line("server config")["env"])

    # -- HTTP ------------------------------------------------------------------------
    def get(self, path: str, **kw):
        return requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path: str, body: dict, **kw):
        return requests.post(self.url + path, json=body, timeout=kw.pop("timeout", 60), **kw)

    def stream(self, path: str, body: dict) -> list[dict]:
        with requests.post(self.url + path, json=body, stream=True, timeout=60) as r:
            assert r.status_code == 200, r.text
            assert r.headers["Content-Type"] == "application/x-ndjson"
            return [json.loads(x) for x in r.iter_lines() if x]

    def pull(self, name: str) -> list[dict]:
        events = self.stream("/api/pull", {"model": name, "insecure": True})
        assert events[-1] == {"status": "success"}, events[-3:]
        return events

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        self._out.close()


class Factory:
    def __init__(self, kind: str, argv: list[str], tmp: Path, mirror: Mirror):
        self.kind, self.argv, self.tmp, self.mirror = kind, argv, tmp, mirror
        self.started: list[Server] = []

    def serve(self, env: dict | None = None, home: Path | None = None) -> Server:
        """Start a server; ``{port}`` in an env value becomes its port. ``home`` reuses a HOME."""
        srv = Server(self.kind, self.argv, self.tmp / f"srv{len(self.started)}", env, home)
        self.started.append(srv)
        return srv

    def model(self, name: str = "real-tiny") -> str:
        """The pull name of a mirror model, e.g. ``127.0.0.1:P/testbed/real-tiny``."""
        return f"{self.mirror.host}/testbed/{name}"

    def stop_all(self) -> None:
        for srv in self.started:
            srv.stop()


@pytest.fixture(scope="session")
def mirror(tmp_path_factory):
    m = Mirror(tmp_path_factory.mktemp("mirror") / "root")
    yield m
    m.stop()


@pytest.fixture(scope="session")
def double_argv(tmp_path_factory, mirror):
    rel = stage_release(tmp_path_factory.mktemp("double"), VERSION, "amd64", f"http://{mirror.host}",
                        tokens_per_s={"gpu": 400, "cpu": 200}, load_seconds=0.05)
    return [sys.executable, str(rel / "bin" / "ollama")]


@pytest.fixture(scope="session")
def real_argv(tmp_path_factory):
    try:
        from testbed.real_ollama import ARTIFACT, ensure_built

        built = ensure_built(log=lambda *a, **k: None)
    except Exception as e:  # noqa: BLE001 - one line, whatever went wrong
        pytest.fail(f"real Ollama {VERSION} build unavailable: {type(e).__name__}: {e}".splitlines()[0],
                    pytrace=False)
    dest = tmp_path_factory.mktemp("real")
    if shutil.which("zstd") is None:
        pytest.fail("real Ollama: the zstd tool is needed to unpack the release tarball", pytrace=False)
    subprocess.run(["tar", "--zstd", "-xf", str(built / ARTIFACT), "-C", str(dest)], check=True, timeout=120)
    return [str(dest / "bin" / "ollama")]


@pytest.fixture(params=["double", "real"])
def ollama(request, tmp_path, mirror):
    argv = request.getfixturevalue(f"{request.param}_argv")
    f = Factory(request.param, argv, tmp_path, mirror)
    yield f
    f.stop_all()
