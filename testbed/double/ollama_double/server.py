"""``ollama serve`` of the test double: start-up journal lines and the HTTP API.

Start-up order follows server/routes.go Serve(): server config, cloud line,
blob prune, ``Listening on``, GPU discovery, ``vram-based default context``.
Handlers answer with Ollama's status codes, error strings and JSON shapes;
streamed endpoints send NDJSON (``application/x-ndjson``) and, like gin, turn
an error that arrives before any content into a plain JSON error response.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import gguf  # copy of tasks/gguf.py, next to this package in the release tree
import goparse

from . import registry, slog, textgen
from . import store as st
from .config import CONFIG, LIB_OLLAMA, VERSION
from .create import CreateError, create_model
from .discovery import GIB, Discovery, human_bytes2
from .env import ServerEnv
from .options import OptionError
from .scheduler import Busy, LoadError, Scheduler

DOUBLE_NUM_PREDICT = 24  # the double's stand-in for "until EOS": replies are short


class ClientGone(Exception):
    pass


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


def _now() -> str:
    return slog.rfc3339_nano()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-deploy-test-double"

    def version_string(self) -> str:
        return self.server_version
    app: App  # set by serve()

    # -- plumbing -------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 - gin-style lines are logged instead
        pass

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

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
        self._send(status, "application/json; charset=utf-8", st.go_json(obj).rstrip(b"\n"))

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
        data = st.go_json(obj)
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

    # -- model helpers ----------------------------------------------------------
    def find_model(self, raw: str):
        name = st.parse_name(raw or "")
        if not name.is_valid():
            return None
        name = self.app.store.existing_name(name)
        try:
            return self.app.store.load_model(name)
        except (OSError, ValueError, st.InvalidDigest):
            return None

    def list_models(self) -> list[dict]:
        out = []
        for name, m in self.app.store.manifests().items():
            try:
                model = self.app.store.load_model(name)
                kv = model.kv()
            except (OSError, ValueError, st.InvalidDigest):
                continue
            details = model.details()
            arch = kv.get("general.architecture", "")
            for key in ("context_length", "embedding_length"):
                if isinstance(kv.get(f"{arch}.{key}"), int):
                    details[key] = kv[f"{arch}.{key}"]
            out.append({
                "name": name.display_shortest(), "model": name.display_shortest(),
                "modified_at": slog.rfc3339_nano(m.mtime_ns), "size": m.size(), "digest": m.digest,
                "details": details, "capabilities": model.capabilities(), "_mtime": m.mtime_ns,
            })
        out.sort(key=lambda x: x["_mtime"] // 10**9, reverse=True)
        for x in out:
            del x["_mtime"]
        return out

    def ps(self) -> list[dict]:
        rows = []
        for r in self.app.sched.loaded():
            name = r.model.short_name
            rows.append({
                "name": name, "model": name, "size": r.plan.size, "digest": r.model.digest,
                "details": r.model.details(with_parent=False), "expires_at": slog.rfc3339_nano(r.expires_at_ns),
                "size_vram": r.plan.size_vram, "context_length": r.plan.num_ctx, "_exp": r.expires_at_ns,
            })
        rows.sort(key=lambda x: x["_exp"] // 10**9, reverse=True)
        for x in rows:
            del x["_exp"]
        return rows

    # -- endpoints --------------------------------------------------------------
    def blob(self, method: str, digest: str) -> None:
        store = self.app.store
        data = self.read_body() if method == "POST" else b""
        try:
            path = store.blob_path(digest)
        except st.InvalidDigest as e:
            return self.json(400, {"error": str(e)})
        if method == "HEAD":
            return self.empty(200) if path.exists() else self.json(404, {"error": f'blob "{digest}" not found'})
        if path.exists():
            return self.empty(200)
        layer, _ = store.new_layer(data, "")
        if layer["digest"] != digest:
            return self.json(400, {"error": f'digest mismatch, expected "{digest}", got "{layer["digest"]}"'})
        return self.empty(201)

    def _progress_reply(self, req: dict, work, errors: tuple) -> None:
        """Run `work(progress)`, streaming each progress object as NDJSON, or with `stream:false`
        answering only the last one; an error after the 200 arrives as a streamed {"error"}."""
        stream = req.get("stream") is not False
        latest: dict = {}

        def progress(p):
            if stream:
                self.chunk(p)
            else:
                latest.clear()
                latest.update(p)

        try:
            work(progress)
        except errors as e:
            status = getattr(e, "status", 500)
            return self.stream_error(str(e), status) if stream else self.json(status, {"error": str(e)})
        if stream:
            self.end_stream()
        else:
            self.json(200, latest)

    def pull(self, req: dict) -> None:
        a = self.app
        name = st.parse_name(req.get("model") or req.get("name") or "")
        if not name.is_valid():
            return self.json(400, {"error": "invalid model name"})
        name = a.store.existing_name(name)
        self._progress_reply(req, lambda progress: registry.pull(
            a.store, name, bool(req.get("insecure")), str(a.cfg["registry"]), progress, no_prune=a.env.no_prune),
            (registry.PullError,))

    def delete(self, req: dict) -> None:
        raw = req.get("model") or req.get("name") or ""
        name = st.parse_name(raw)
        if not name.is_valid():
            return self.json(400, {"error": f'name "{raw}" is invalid'})
        name = self.app.store.existing_name(name)
        try:
            m = self.app.store.read_manifest(name)
        except (OSError, ValueError):
            return self.json(404, {"error": f"model '{raw}' not found"})
        self.app.store.remove_manifest(m)
        self.app.store.remove_layers(m)  # DeleteHandler always prunes (OLLAMA_NOPRUNE is not consulted)
        self.empty(200)

    def copy(self, req: dict) -> None:
        src, dst = st.parse_name(req.get("source", "")), st.parse_name(req.get("destination", ""))
        if not src.is_valid():
            return self.json(400, {"error": f'source "{req.get("source", "")}" is invalid'})
        if not dst.is_valid():
            return self.json(400, {"error": f'destination "{req.get("destination", "")}" is invalid'})
        try:
            raw = self.app.store.read_manifest(self.app.store.existing_name(src)).path.read_bytes()
        except OSError:
            return self.json(404, {"error": f'model "{req.get("source", "")}" not found'})
        self.app.store.write_manifest_bytes(self.app.store.existing_name(dst), raw)
        self.empty(200)

    def show(self, req: dict) -> None:
        raw = req.get("model") or req.get("name") or ""
        model = self.find_model(raw)
        if model is None:  # ShowHandler names the model as DisplayShortest (tag included)
            name = st.parse_name(raw)
            shown = self.app.store.existing_name(name).display_shortest() if name.is_valid() else raw
            return self.json(404, {"error": f"model '{shown}' not found"})
        kv = gguf.read_kv(model.model_path, -1)
        if not req.get("verbose"):
            # getModelData decodes with maxArraySize 0: every non-empty array keeps no values and
            # encodes as null (its ">5 elements -> []" rewrite never matches the decoder's type)
            kv = {k: (None if isinstance(v, list) and v else v) for k, v in kv.items()}
        kv.pop("general.name", None)
        kv.pop("tokenizer.chat_template", None)
        params = []
        for k in sorted(model.params):
            vals = model.params[k] if isinstance(model.params[k], list) else [model.params[k]]
            params += [f"{k:<30} {_go_sharp_v(v)}" for v in vals]
        resp = {
            "license": "\n".join(model.license),
            "modelfile": self.modelfile(model),
            "parameters": "\n".join(params),
            "template": model.template,
            "details": model.details(),
            "model_info": kv,
            "capabilities": model.capabilities(),
            "modified_at": slog.rfc3339_nano(model.manifest.mtime_ns),
        }
        if model.system:
            resp["system"] = model.system
        tensors = st.tensor_infos(model.model_path)
        if tensors:  # omitempty
            resp["tensors"] = tensors
        # api.ShowResponse field order; strings are omitempty (model_info is not)
        resp = {k: resp[k] for k in ("license", "modelfile", "parameters", "template", "system", "details",
                                     "model_info", "tensors", "capabilities", "modified_at")
                if k in resp and resp[k] != ""}
        self.json(200, resp)

    @staticmethod
    def modelfile(model) -> str:
        lines = ['# Modelfile generated by "ollama show"', "# To build a new Modelfile based on this, replace FROM with:",
                 f"# FROM {model.short_name}", "", f"FROM {model.model_path}"]
        if model.template:
            lines.append(f"TEMPLATE {_modelfile_quote(model.template)}")
        if model.system:
            lines.append(f"SYSTEM {_modelfile_quote(model.system)}")
        for k in sorted(model.params):  # Go ranges over a map here: any order is faithful
            vals = model.params[k] if isinstance(model.params[k], list) else [model.params[k]]
            lines += [f"PARAMETER {k} {_modelfile_quote(_go_v(v))}" for v in vals]
        for lic in model.license:
            lines.append(f"LICENSE {_modelfile_quote(lic)}")
        return "\n".join(lines) + "\n"

    def create(self, req: dict) -> None:
        a = self.app
        name = st.parse_name(req.get("model") or req.get("name") or "")
        if not name.is_valid():
            return self.json(400, {"error": "invalid model name"})
        name = a.store.existing_name(name)
        self._progress_reply(req, lambda progress: create_model(a, name, req, progress),
                             (CreateError, registry.PullError))

    # -- inference ----------------------------------------------------------------
    def generate(self, req: dict) -> None:
        self._infer(req, chat=False)

    def chat(self, req: dict) -> None:
        self._infer(req, chat=True)

    def _infer(self, req: dict, chat: bool) -> None:
        a = self.app
        t_start = time.monotonic_ns()
        try:
            keep_alive = goparse.parse_request_keep_alive(req.get("keep_alive"))
        except ValueError as e:
            return self.json(400, {"error": str(e)})
        raw = req.get("model") or ""
        if not raw:
            return self.json(400, {"error": "model is required"})
        model = self.find_model(raw)
        if model is None:
            return self.json(404, {"error": f"model '{raw}' not found"})
        if chat:
            msgs = req.get("messages") or []
            prompt = next((m.get("content", "") for m in reversed(msgs) if m.get("role") == "user"), "")
            system = next((m.get("content", "") for m in msgs if m.get("role") == "system"), model.system)
            empty = not msgs
        else:
            prompt = req.get("prompt") or ""
            system = req.get("system") or model.system
            empty = prompt == ""
        base = {"model": raw}
        if empty and keep_alive == 0:
            a.sched.expire_model(model)
            return self._reply(req, chat, base, "unload")
        # GenerateHandler / ChatHandler: a thinking model thinks unless the request says think=false;
        # asking another model to think, or an embedding model to generate, is a 400.
        caps, think = model.capabilities(), req.get("think")
        if "thinking" not in caps and think not in (None, False, ""):
            return self.json(400, {"error": f"{_go_q(raw)} does not support thinking"})
        if "completion" not in caps:
            return self.json(400, {"error": f"{_go_q(raw)} does not support {'chat' if chat else 'generate'}"})
        thinking = "thinking" in caps and think is not False
        try:
            opts, _ctx_auto, batch_auto = a.sched.options(model, req.get("options"))
            runner, _ = a.sched.acquire(model, opts, batch_auto, keep_alive)
            # load_duration = checkpointLoaded - checkpointStart: also non-zero for a loaded model
            load_ns = time.monotonic_ns() - t_start
        except OptionError as e:
            return self.json(500, {"error": str(e)})
        except Busy as e:
            return self.json(503, {"error": str(e)})
        except LoadError as e:
            return self.json(500, {"error": str(e)})
        try:
            if empty:
                return self._reply(req, chat, base, "load")
            self._run(req, chat, base, runner, opts, (prompt, system, thinking), load_ns, t_start)
        finally:
            a.sched.release(runner)

    def embed(self, req: dict) -> None:
        """EmbedHandler: any model loads (no capability is required); no input only loads it."""
        a = self.app
        t_start = time.monotonic_ns()
        raw, given = req.get("model") or "", req.get("input")
        texts = [given] if isinstance(given, str) and given else given if isinstance(given, list) else []
        if (given is not None and not isinstance(given, (str, list))) or not all(isinstance(t, str) for t in texts):
            return self.json(400, {"error": "invalid input type"})
        model = self.find_model(raw)
        if model is None:
            return self.json(404, {"error": f"model '{raw}' not found"})
        try:
            keep_alive = goparse.parse_request_keep_alive(req.get("keep_alive"))
            opts, _ctx_auto, batch_auto = a.sched.options(model, req.get("options"))
            runner, _ = a.sched.acquire(model, opts, batch_auto, keep_alive)
        except ValueError as e:
            return self.json(400, {"error": str(e)})
        except (OptionError, LoadError) as e:
            return self.json(500, {"error": str(e)})
        except Busy as e:
            return self.json(503, {"error": str(e)})
        load_ns = time.monotonic_ns() - t_start
        try:
            if not texts:
                return self.json(200, {"model": raw, "embeddings": []})
            width = gguf.arch_uint(model.kv(), "embedding_length") or 8
            self.json(200, {"model": raw, "embeddings": [textgen.embedding(t, width) for t in texts],
                            "total_duration": time.monotonic_ns() - t_start, "load_duration": load_ns,
                            "prompt_eval_count": sum(textgen.count_tokens(t) for t in texts)})
        finally:
            a.sched.release(runner)

    def _reply(self, req, chat, base, reason) -> None:
        obj = {**base, "created_at": _now()}
        if chat:
            obj["message"] = {"role": "assistant", "content": ""}
        else:
            obj["response"] = ""
        obj.update({"done": True, "done_reason": reason})
        if req.get("stream") is False:
            self.json(200, obj)
        else:
            self.chunk(obj)
            self.end_stream()

    def _run(self, req, chat, base, runner, opts, text_in, load_ns, t_start) -> None:
        """Stream the reply; with ``thinking`` every token goes to the thinking field (the prompt
        ends in the opening tag and the double never writes the closing one)."""
        prompt, system, thinking = text_in
        field = "thinking" if thinking else ("content" if chat else "response")
        cfg = self.app.cfg["tokens_per_s"]
        rate = float(cfg["gpu"] if runner.fully_on_gpu else cfg["cpu"]) or 1.0
        tokens = textgen.reply_tokens(prompt)
        limit = opts["num_predict"] if opts["num_predict"] >= 0 else DOUBLE_NUM_PREDICT
        reason = "stop"
        if len(tokens) > limit:
            tokens, reason = tokens[:limit], "length"
        stops = [s for s in opts.get("stop") or [] if s]
        n_prompt = textgen.count_tokens(system + " " + prompt) + (8 if runner.model.has_template else 0)
        p_ns = int(n_prompt / (rate * 20) * 1e9)
        time.sleep(p_ns / 1e9)
        stream = req.get("stream") is not False
        out, text = [], ""
        t_eval = time.monotonic_ns()
        for tok in tokens:
            time.sleep(1.0 / rate)
            hit = next((s for s in stops if s in text + tok), None)
            if hit is not None:
                tok = (text + tok)[: (text + tok).index(hit)][len(text):]
                reason = "stop"
            out.append(tok)
            text += tok
            if stream and tok:
                self.chunk(_message(base, chat, {field: tok}) | {"done": False})
            if hit is not None:
                break
        eval_ns = time.monotonic_ns() - t_eval
        final = _message(base, chat, {} if stream else {field: text})
        final["done"] = True
        final["done_reason"] = reason
        if not chat and not req.get("raw"):  # tokens of prompt + reply (a deprecated field, still sent)
            final["context"] = textgen.token_ids(system + " " + prompt + " " + text)
        final.update({"total_duration": time.monotonic_ns() - t_start, "load_duration": load_ns})
        final.update({"prompt_eval_count": n_prompt, "prompt_eval_duration": p_ns, "eval_count": len(out),
                      "eval_duration": eval_ns})
        if stream:
            self.chunk(final)
            self.end_stream()
        else:
            self.json(200, final)


def _message(base: dict, chat: bool, text: dict) -> dict:
    """A generate or chat reply object up to "done": api.GenerateResponse puts response (always) then
    thinking (omitempty); api.Message content (always) then thinking (omitempty)."""
    obj = {**base, "created_at": _now()}
    body = {"content" if chat else "response": text.get("content", text.get("response", ""))}
    if text.get("thinking"):
        body["thinking"] = text["thinking"]
    if chat:
        obj["message"] = {"role": "assistant", **body}
    else:
        obj.update(body)
    return obj


def _go_q(s: str) -> str:
    """Go's %q of a string (printable runes kept, quotes and backslashes escaped)."""
    return json.dumps(s, ensure_ascii=False)


def _go_g(x: float) -> str:
    """strconv.FormatFloat(x, 'g', -1, 64), which %v and %#v print for a float64:
    shortest digits, exponent form when exp < -4 or exp >= 6 (1000000 -> 1e+06)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if str(x).startswith("-") else "0"
    sign, digits, exp10 = Decimal(repr(x)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    dp = len(ds) + exp10  # position of the decimal point
    pre = "-" if sign else ""
    exp = dp - 1
    if exp < -4 or exp >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{pre}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{pre}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return pre + ds + "0" * (dp - len(ds))
    return f"{pre}{ds[:dp]}.{ds[dp:]}"


def _go_v(v) -> str:
    """fmt %v of a JSON-decoded value (numbers are float64 in Go's map[string]any)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _go_g(float(v))
    return str(v)


def _go_sharp_v(v) -> str:
    """fmt %#v of a JSON-decoded value: strings quoted, numbers as float64 (%g, 1e+06)."""
    if isinstance(v, str):
        return goparse.go_quote(v)
    return _go_v(v)


def _modelfile_quote(s: str) -> str:
    """parser.quote: quote only values with a newline or edge spaces; triple quotes if they hold '"'."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


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
    return goparse.go_join_host_port(host, str(port))


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
