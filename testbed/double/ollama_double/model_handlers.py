"""The model-management endpoints: tags, ps, blobs, pull, create, copy, delete, show.

A mixin of server.Handler that answers through http_io.HttpIO.  These are
the endpoints that read and write the model store; inference_handlers.py
holds the ones that load a model and reply with text.
"""

from __future__ import annotations

from ollama_deploy.gocompat import gguf

from . import registry, slog
from . import store as st
from .create import CreateError, create_model
from .gofmt import go_sharp_v, go_v
from .model import tensor_infos
from .names import parse_name


class ModelHandlers:
    """Model endpoints of server.Handler; the inference endpoints use its ``find_model`` too."""

    # -- model helpers ----------------------------------------------------------
    def find_model(self, raw: str):
        name = parse_name(raw or "")
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
        name = parse_name(req.get("model") or req.get("name") or "")
        if not name.is_valid():
            return self.json(400, {"error": "invalid model name"})
        name = a.store.existing_name(name)
        self._progress_reply(req, lambda progress: registry.pull(
            a.store, name, bool(req.get("insecure")), str(a.cfg["registry"]), progress, no_prune=a.env.no_prune),
            (registry.PullError,))

    def delete(self, req: dict) -> None:
        raw = req.get("model") or req.get("name") or ""
        name = parse_name(raw)
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
        src, dst = parse_name(req.get("source", "")), parse_name(req.get("destination", ""))
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
            name = parse_name(raw)
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
            params += [f"{k:<30} {go_sharp_v(v)}" for v in vals]
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
        tensors = tensor_infos(model.model_path)
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
            lines += [f"PARAMETER {k} {_modelfile_quote(go_v(v))}" for v in vals]
        for lic in model.license:
            lines.append(f"LICENSE {_modelfile_quote(lic)}")
        return "\n".join(lines) + "\n"

    def create(self, req: dict) -> None:
        a = self.app
        name = parse_name(req.get("model") or req.get("name") or "")
        if not name.is_valid():
            return self.json(400, {"error": "invalid model name"})
        name = a.store.existing_name(name)
        self._progress_reply(req, lambda progress: create_model(a, name, req, progress),
                             (CreateError, registry.PullError))


def _modelfile_quote(s: str) -> str:
    """parser.quote: quote only values with a newline or edge spaces; triple quotes if they hold '"'."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s
