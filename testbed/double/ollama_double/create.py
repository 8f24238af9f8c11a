"""POST /api/create (server/create.go), reduced to what a deploy uses.

Supported: ``from`` an existing (or pullable) model, or ``files`` naming one
uploaded GGUF blob; ``template``, ``system``, ``license`` and ``parameters``
(merged over the base model's params layer).  Like the real server, the
parameters map is stored as given: unknown names are rejected only by the
client (``ollama create`` runs api.FormatParams on the Modelfile).
"""

from __future__ import annotations

import json

from ollama_deploy.gocompat import gguf

from . import registry
from . import store as st
from .gofmt import go_json
from .names import Name, parse_name

# general.file_type -> name (fs/ggml/type.go FileType order)
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
              17: "Q5_K_M", 18: "Q6_K", 24: "BF16"}


class CreateError(Exception):
    def __init__(self, msg: str, status: int = 500):
        super().__init__(msg)
        self.status = status


def _base_layers(app, req, progress) -> tuple[list[dict], dict]:
    store = app.store
    if req.get("from"):
        from_name = parse_name(req["from"])
        if not from_name.is_valid():
            raise CreateError("invalid model name", 400)
        from_name = store.existing_name(from_name)
        try:
            m = store.read_manifest(from_name)
        except OSError:
            # parseFromModel pulls a base it does not have
            registry.pull(store, from_name, False, str(app.cfg["registry"]), progress, no_prune=app.env.no_prune)
            m = store.read_manifest(from_name)
        base_cfg = {}
        if m.config.get("digest"):
            try:
                base_cfg = json.loads(store.blob_path(m.config["digest"]).read_bytes())
            except (OSError, ValueError):
                base_cfg = {}
        # parseFromModel: every base layer records the model it came from (DisplayShortest)
        return [{**layer, "from": from_name.display_shortest()} for layer in m.layers], base_cfg
    files = req.get("files") or {}
    if files:
        if len(files) != 1:
            raise CreateError("only one GGUF file is supported by the test double", 400)
        digest = next(iter(files.values()))
        try:
            path = store.blob_path(digest)
            kv = gguf.read_kv(str(path))
        except (OSError, st.InvalidDigest, gguf.GGUFError):
            raise CreateError("supplied file was not in GGUF format", 400) from None
        arch = gguf.architecture(kv)
        cfg = {"model_format": "gguf", "model_family": arch, "model_families": [arch],
               "model_type": "unknown", "file_type": FILE_TYPES.get(kv.get("general.file_type"), "unknown")}
        return [{"mediaType": st.MT_MODEL, "digest": digest, "size": path.stat().st_size}], cfg
    raise CreateError("neither 'from' or 'files' was specified", 400)


def create_model(app, name: Name, req: dict, progress) -> None:
    store = app.store
    try:
        old = store.read_manifest(name)
    except (OSError, ValueError):
        old = None
    layers, base_cfg = _base_layers(app, req, progress)
    statuses = {layer["digest"]: f"using existing layer {layer['digest']}" for layer in layers}

    def replace(media_type: str, data: bytes) -> None:
        nonlocal layers
        layers = [x for x in layers if x["mediaType"] != media_type]
        layer, status = store.new_layer(data, media_type)
        statuses[layer["digest"]] = status
        layers.append(layer)

    if req.get("template"):
        replace(st.MT_TEMPLATE, req["template"].encode())
    if req.get("system"):
        replace(st.MT_SYSTEM, req["system"].encode())
    lic = req.get("license")
    for text in ([lic] if isinstance(lic, str) else lic or []):
        if text:
            layer, status = store.new_layer(str(text).encode(), st.MT_LICENSE)
            statuses[layer["digest"]] = status
            layers.append(layer)
    params = dict(req.get("parameters") or {})
    for layer in layers:
        if layer["mediaType"] == st.MT_PARAMS:
            existing = json.loads(store.blob_path(layer["digest"]).read_bytes())
            for k, v in existing.items():
                params.setdefault(k, v)
    if params:  # json.Encoder of a Go map: sorted keys, HTML-escaped, so digests match real Ollama's
        replace(st.MT_PARAMS, go_json(params, sort_keys=True))
    cfg = {
        "model_format": base_cfg.get("model_format", "gguf"),
        "model_family": base_cfg.get("model_family", ""),
        "model_families": base_cfg.get("model_families"),
        "model_type": base_cfg.get("model_type", ""),
        "file_type": base_cfg.get("file_type", ""),
        "architecture": app.cfg.get("arch", "amd64"),
        "os": "linux",
    }
    config_layer, _ = store.new_layer(go_json(cfg), st.MT_CONFIG)
    for layer in layers:
        progress({"status": statuses.get(layer["digest"], f"using existing layer {layer['digest']}")})
    progress({"status": "writing manifest"})
    store.write_manifest(name, config_layer, layers)
    if not app.env.no_prune and old is not None:
        store.remove_layers(old)
    progress({"status": "success"})
