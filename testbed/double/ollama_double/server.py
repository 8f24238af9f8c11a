"""``ollama serve`` of the test double: start-up journal lines and the HTTP API.

Start-up order follows server/routes.go Serve(): server config, cloud line,
blob prune, ``Listening on``, GPU discovery, ``vram-based default context``.
Handlers answer with Ollama's status codes, error strings and JSON shapes;
streamed endpoints send NDJSON (``application/x-ndjson``) and, like gin, turn
an error that arrives before any content into a plain JSON error response.

The endpoints live in mixins by topic (http_io, model_handlers,
inference_handlers); this module holds the shared state, routing and start-up.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ollama_deploy.gocompat import hostport

from . import slog
from . import store as st
from .config import CONFIG, LIB_OLLAMA, VERSION
from .devices import GIB, human_bytes2
from .discovery import Discovery
from .env import ServerEnv
from .http_io import ClientGone, HttpIO
from .inference_handlers import InferenceHandlers
from .model_handlers import ModelHandlers
from .scheduler import Scheduler


class App:
    """State shared by all request threads."""

    def __init__(self, environ=None):
        self.environ = dict(os.environ if environ is None else environ)
        self.env = ServerEnv(self.environ)
        self.log = slog.Logger(self.env.log_level)
        self.cfg = CONFIG
        self.store = st.Store(self.env.models)
        self.sched: Scheduler | None = None

    def start(self) -> None:
        env, log = self.env, self.log
        for source, msg, attrs in env.warnings:
            log.warn(source, msg, *attrs)
        log.info("routes.go:1951", "server config", "env", env.values())
        log.info("routes.go:1953", f"Ollama cloud disabled: {'true' if env.no_cloud else 'false'}")
        self.store.blobs_dir()
        if not env.no_prune:
            self.store.prune_at_start(log)
        if not env.no_cloud:
            # Real Ollama calls ollama.com at every start unless cloud is off; here there is no network.
            lookup = "dial tcp: lookup ollama.com: no such host"
            log.warn("model_recommendations.go:168", "model recommendations refresh failed", "error",
                     f'Get "https://ollama.com/api/experimental/model-recommendations": {lookup}')
            log.warn("model_show_cache.go:142", "model show cloud cache hydration failed", "error",
                     f'Get "https://ollama.com/api/tags": {lookup}')

    def discover(self) -> None:
        disc = Discovery(self.env, self.log, LIB_OLLAMA, self.environ)
        devices = disc.run()
        disc.log_details(devices)
        # uint64 in Go (routes.go): an overhead above a GPU's total wraps around, as there.
        total = sum((d.total - self.env.gpu_overhead) % 2**64 for d in devices)
        default_ctx = 262144 if total >= 47 * GIB else 32768 if total >= 23 * GIB else 4096
        self.log.info("routes.go:2058", "vram-based default context", "total_vram", human_bytes2(total),
                      "default_num_ctx", default_ctx)
        self.sched = Scheduler(self.env, self.log, devices, disc.system, LIB_OLLAMA, self.cfg, default_ctx)


# The mixins come before BaseHTTPRequestHandler so that HttpIO.send_response, which records
# the status for the gin line, overrides the base one.
class Handler(InferenceHandlers, ModelHandlers, HttpIO, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-deploy-test-double"

    def version_string(self) -> str:
        return self.server_version
    app: App  # set by serve()

    # -- plumbing -------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 - gin-style lines are logged instead
        pass

    def _dispatch(self, method: str) -> None:
        self._status = 0
        self._streaming = False
        t0 = time.monotonic_ns()
        path = urlsplit(self.path).path
        try:
            self._route(method, path)
        except ClientGone:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # keep serving; report like gin's recovery would
            self.app.log.error("server.py:0", "ollama-deploy test double: handler failure", "error", repr(e))
            if not self._streaming:
                self.json(500, {"error": str(e)})
            self.close_connection = True
        finally:
            self.app.log.gin(self._status or 499, time.monotonic_ns() - t0, self.client_address[0], method, path)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _route(self, method: str, path: str) -> None:
        a = self.app
        if path == "/" and method in ("GET", "HEAD"):
            return self.text(200, "Ollama is running")
        if path == "/api/version" and method in ("GET", "HEAD"):
            return self.json(200, {"version": VERSION})
        if path == "/api/tags" and method in ("GET", "HEAD"):
            return self.json(200, {"models": self.list_models()})
        if path == "/api/ps" and method == "GET":
            return self.json(200, {"models": self.ps()})
        if path.startswith("/api/blobs/") and method in ("HEAD", "POST"):
            return self.blob(method, path[len("/api/blobs/"):])
        handlers = {
            ("POST", "/api/pull"): self.pull,
            ("POST", "/api/generate"): self.generate,
            ("POST", "/api/chat"): self.chat,
            ("POST", "/api/embed"): self.embed,
            ("POST", "/api/show"): self.show,
            ("POST", "/api/create"): self.create,
            ("POST", "/api/copy"): self.copy,
            ("DELETE", "/api/delete"): self.delete,
        }
        h = handlers.get((method, path))
        if h is None:
            self.read_body()
            return self.text(404, "404 page not found")
        try:
            body = self.read_json()
        except ValueError as e:
            return self.json(400, {"error": str(e)})
        if a.sched is None:
            return self.json(503, {"error": "server is starting"})
        return h(body)


def _server_class(host: str):
    family = socket.AF_INET6 if (host == "" or ":" in host) else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

        def server_bind(self):
            if family == socket.AF_INET6 and host == "":
                try:
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                except OSError:
                    pass
            super().server_bind()

    return Server


def _listen_addr(srv) -> str:
    host, port = srv.server_address[:2]
    return hostport.go_join_host_port(host, str(port))


def initialize_keypair(environ: dict) -> str | None:
    """cmd.go initializeKeypair, run before anything else by RunServer: ~/.ollama/id_ed25519 is made
    when missing; an error (e.g. a root-owned ~/.ollama) ends ``ollama serve``. Returns that error."""
    home = environ.get("HOME") or os.path.expanduser("~")
    private = os.path.join(home, ".ollama", "id_ed25519")
    if os.path.exists(private):
        return None
    # cmd.go prints to stdout (unbuffered in Go, so flush: the line is there while serving)
    print(f"Couldn't find '{private}'. Generating new private key.", flush=True)
    directory = os.path.dirname(private)
    try:
        if os.path.exists(directory) and not os.path.isdir(directory):  # Go's MkdirAll: ENOTDIR
            raise NotADirectoryError(20, "not a directory", directory)
        os.makedirs(directory, 0o755, exist_ok=True)
    except OSError as e:
        return f"could not create directory mkdir {e.filename}: {(e.strerror or str(e)).lower()}"
    try:  # not a real key: the double signs nothing
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"TEST DOUBLE: not an ed25519 key\n")
        os.close(fd)
        public = b"ssh-ed25519 TEST-DOUBLE\n"
        fd = os.open(private + ".pub", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, public)
        os.close(fd)
    except OSError as e:
        return f"open {e.filename}: {(e.strerror or str(e)).lower()}"
    print(f"Your new public key is: \n\n{public.decode()}", flush=True)
    return None


def serve(environ=None) -> int:
    problem = initialize_keypair(dict(os.environ if environ is None else environ))
    if problem:
        print(f"Error: {problem}", file=sys.stderr)
        return 1
    app = App(environ)
    h = app.env.host
    bind_host = h.host if h.host != "" else "::"
    try:
        srv = _server_class("" if h.host == "" else bind_host)((bind_host, int(h.port)), type("H", (Handler,), {"app": app}))
    except OSError as e:
        reason = "bind: address already in use" if e.errno == 98 else (e.strerror or str(e))
        print(f"Error: listen tcp {h.hostport}: {reason}", file=sys.stderr)
        return 1
    app.start()
    app.log.info("routes.go:2008", f"Listening on {_listen_addr(srv)} (version {VERSION})")
    app.discover()

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        if app.sched is not None:
            app.sched.stop_all()
        srv.server_close()
    return 0
