"""Ollama's on-disk model store: names, manifests and blobs.

Layout (``types/model/name.go``, ``manifest/paths.go``)::

    $OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag>
    $OLLAMA_MODELS/blobs/sha256-<64 hex>
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

import gguf  # copy of tasks/gguf.py, next to this package in the release tree

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MISSING = "!MISSING!"

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_MODEL = "application/vnd.ollama.image.model"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_SYSTEM = "application/vnd.ollama.image.system"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_LICENSE = "application/vnd.ollama.image.license"
MT_MESSAGES = "application/vnd.ollama.image.messages"

_DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")
LAYER_PRUNE_GRACE_NS = 3600 * 10**9  # server/images.go: layerPruneGracePeriod


class InvalidDigest(ValueError):
    def __init__(self):
        super().__init__("invalid digest format")


@dataclasses.dataclass(frozen=True)
class Name:
    """A fully or partly qualified model name (model.Name)."""

    host: str = ""
    namespace: str = ""
    model: str = ""
    tag: str = ""
    scheme: str = ""

    def is_valid(self) -> bool:
        return all(
            _valid_part(kind, part)
            for kind, part in (("host", self.host), ("namespace", self.namespace), ("model", self.model), ("tag", self.tag))
        )

    def display_shortest(self) -> str:
        """host/ns/ only when not the defaults (what /api/tags and ps show)."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def filepath(self) -> Path:
        return Path(self.host, self.namespace, self.model, self.tag)


def _cut_promised(s: str, sep: str):
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return (s[:i] or MISSING), (s[i + len(sep):] or MISSING), True


def parse_name_bare(s: str) -> Name:
    """model.ParseNameBare."""
    tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        return Name(model=s, tag=tag)
    s, namespace, promised = _cut_promised(s, "/")
    if not promised:
        return Name(namespace=s, model=model, tag=tag)
    scheme = ""
    if "://" in s:
        scheme, s = s.split("://", 1)
    return Name(host=s, namespace=namespace, model=model, tag=tag, scheme=scheme)


def parse_name(s: str) -> Name:
    """model.ParseName: bare parse merged with registry.ollama.ai/library/…:latest."""
    n = parse_name_bare(s)
    return Name(
        host=n.host or DEFAULT_HOST,
        namespace=n.namespace or DEFAULT_NAMESPACE,
        model=n.model,
        tag=n.tag or DEFAULT_TAG,
        scheme=n.scheme or "https",
    )


def _valid_part(kind: str, s: str) -> bool:
    if not 1 <= len(s) <= (350 if kind == "host" else 80):
        return False
    for i, c in enumerate(s):
        alnum = c.isascii() and (c.isalnum() or c == "_")
        if i == 0:
            if not alnum:
                return False
        elif c in "_-":
            continue
        elif c == ".":
            if kind == "namespace":
                return False
        elif c == ":":
            if kind != "host":
                return False
        elif not alnum:
            return False
    return True


@dataclasses.dataclass
class Manifest:
    name: Name
    path: Path
    data: dict
    digest: str  # hex sha256 of the manifest file bytes
    mtime_ns: int

    @property
    def layers(self) -> list[dict]:
        return list(self.data.get("layers") or [])

    @property
    def config(self) -> dict:
        return dict(self.data.get("config") or {})

    def size(self) -> int:
        return sum(int(layer.get("size", 0)) for layer in self.layers + [self.config])


_THINKING_ACTION = re.compile(r"([^\s{}]+)\s*\{\{-?\s*\.Thinking\s*-?\}\}\s*([^\s{}]+)")


@dataclasses.dataclass
class Model:
    """What the scheduler and the API need to know about one local model."""

    name: Name
    manifest: Manifest
    config: dict
    model_path: str
    template: str = ""
    system: str = ""
    params: dict = dataclasses.field(default_factory=dict)
    license: list = dataclasses.field(default_factory=list)
    has_template: bool = False
    parent_model: str = ""  # the model layer's "from" (set by create from another model)
    _kv: dict | None = None

    @property
    def short_name(self) -> str:
        return self.name.display_shortest()

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def kv(self) -> dict:
        if self._kv is None:
            self._kv = gguf.read_kv(self.model_path)
        return self._kv

    def thinking_tags(self) -> tuple[str, str]:
        """thinking.InferTags, for templates shaped like deepseek-r1's: the text either side of
        ``{{ .Thinking }}`` inside a range over .Messages ("", "" when there is none)."""
        if "range" not in self.template or ".Messages" not in self.template:
            return "", ""
        m = _THINKING_ACTION.search(self.template)
        return (m.group(1), m.group(2)) if m else ("", "")

    def capabilities(self) -> list[str]:
        """Model.Capabilities (server/images.go) for a GGUF model with a Go template: embedding when
        the metadata has <arch>.pooling_type, else completion; then the template's tools, insert,
        thinking."""
        caps = ["embedding" if gguf.is_embedding(self.kv()) else "completion"]
        caps += [c for c, field in (("tools", ".Tools"), ("insert", ".Suffix")) if field in self.template]
        return caps + (["thinking"] if all(self.thinking_tags()) else [])

    def details(self, with_parent: bool = True) -> dict:
        """api.ModelDetails; /api/tags and /api/show name the parent model, /api/ps does not."""
        c = self.config
        return {
            "parent_model": self.parent_model if with_parent else "",
            "format": c.get("model_format", ""),
            "family": c.get("model_family", ""),
            "families": c.get("model_families"),
            "parameter_size": c.get("model_type", ""),
            "quantization_level": c.get("file_type", ""),
        }


def _go_numbers(obj):
    """Go prints whole float64 values without ".0" (500000, not 500000.0)."""
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 1e21:
        return int(obj)
    if isinstance(obj, dict):
        return {k: _go_numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_go_numbers(v) for v in obj]
    return obj


def go_json(obj, sort_keys: bool = False) -> bytes:
    """json.NewEncoder(w).Encode(obj): compact, HTML-escaped, trailing newline.
    ``sort_keys``: obj is a Go map (encoding/json sorts map keys; struct fields keep their order)."""
    s = json.dumps(_go_numbers(obj), separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (s + "\n").encode()


class Store:
    def __init__(self, root: str):
        self.root = Path(root)

    # -- paths --------------------------------------------------------------
    def blobs_dir(self) -> Path:
        p = self.root / "blobs"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def manifests_dir(self) -> Path:
        p = self.root / "manifests"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def blob_path(self, digest: str) -> Path:
        m = _DIGEST_RE.match(digest)
        if not m:
            raise InvalidDigest()
        return self.blobs_dir() / f"sha256-{m.group(1)}"

    def manifest_path(self, name: Name) -> Path:
        return self.manifests_dir() / name.filepath()

    # -- manifests ----------------------------------------------------------
    def read_manifest(self, name: Name) -> Manifest:
        path = self.manifest_path(name)
        raw = path.read_bytes()  # FileNotFoundError = "not found"
        return Manifest(name, path, json.loads(raw), hashlib.sha256(raw).hexdigest(), path.stat().st_mtime_ns)

    def manifests(self) -> dict[Name, Manifest]:
        out = {}
        base = self.manifests_dir()
        for path in base.glob("*/*/*/*"):
            if not path.is_file():
                continue
            host, ns, model, tag = path.relative_to(base).parts
            name = Name(host, ns, model, tag, "https")
            if not name.is_valid():
                continue
            try:
                out[name] = self.read_manifest(name)
            except (OSError, ValueError):
                continue
        return out

    def existing_name(self, name: Name) -> Name:
        """getExistingName: adopt the case of parts that already exist on disk."""
        host, ns, model, tag = name.host, name.namespace, name.model, name.tag
        for e in self.manifests():
            host = e.host if e.host.lower() == name.host.lower() else host
            ns = e.namespace if e.namespace.lower() == name.namespace.lower() else ns
            model = e.model if e.model.lower() == name.model.lower() else model
            tag = e.tag if e.tag.lower() == name.tag.lower() else tag
        return dataclasses.replace(name, host=host, namespace=ns, model=model, tag=tag)

    def write_manifest_bytes(self, name: Name, raw: bytes) -> None:
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, path)

    def write_manifest(self, name: Name, config: dict, layers: list[dict]) -> None:
        data = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config, "layers": layers}
        self.write_manifest_bytes(name, go_json(data))

    def new_layer(self, data: bytes, media_type: str) -> tuple[dict, str]:
        """manifest.NewLayer: store a blob; status 'using existing'/'creating new layer'."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        status = "using existing layer"
        if not path.exists():
            status = "creating new layer"
            fd, tmp = tempfile.mkstemp(prefix="sha256-", dir=self.blobs_dir())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        os.utime(path)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}, f"{status} {digest}"

    def remove_manifest(self, m: Manifest) -> None:
        m.path.unlink()
        self._prune_dirs(self.manifests_dir())

    def _prune_dirs(self, base: Path) -> None:
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass

    def in_use_digests(self) -> set[str]:
        used = set()
        for m in self.manifests().values():
            for layer in m.layers + [m.config]:
                if layer.get("digest"):
                    used.add(layer["digest"])
        return used

    def remove_layers(self, m: Manifest) -> None:
        """Manifest.RemoveLayers: delete this manifest's blobs no other manifest uses."""
        used = self.in_use_digests()
        for layer in m.layers + [m.config]:
            d = layer.get("digest")
            if d and d not in used:
                try:
                    self.blob_path(d).unlink()
                except (FileNotFoundError, InvalidDigest):
                    pass

    def delete_unused(self, digests: set[str]) -> set[str]:
        left = set(digests) - self.in_use_digests()
        for d in left:
            try:
                self.blob_path(d).unlink()
            except (FileNotFoundError, InvalidDigest):
                pass
        return left

    def prune_at_start(self, log) -> None:
        """server.PruneLayers at start: drop unused blobs and stale partial files."""
        blobs = self.blobs_dir()
        candidates = set()
        now = time.time_ns()
        for p in blobs.iterdir():
            if p.is_dir():
                continue
            try:
                if now - p.stat().st_mtime_ns < LAYER_PRUNE_GRACE_NS:
                    continue
            except OSError:
                continue
            name = p.name.replace("-", ":")
            if not _DIGEST_RE.match(name):
                p.unlink(missing_ok=True)  # e.g. an abandoned "-partial" download
                continue
            candidates.add(name)
        log.info("images.go:919", f"total blobs: {len(candidates)}")
        removed = self.delete_unused(candidates)
        log.info("images.go:926", f"total unused blobs removed: {len(removed)}")
        self._prune_dirs(self.manifests_dir())

    # -- models -------------------------------------------------------------
    def load_model(self, name: Name) -> Model:
        """GetModel: read the manifest and the small layers it names."""
        m = self.read_manifest(name)
        config = {}
        if m.config.get("digest"):
            try:
                config = json.loads(self.blob_path(m.config["digest"]).read_bytes())
            except (OSError, ValueError):
                config = {}
        model = Model(name=name, manifest=m, config=config, model_path="")
        for layer in m.layers:
            path = self.blob_path(layer["digest"])
            mt = layer.get("mediaType")
            if mt == MT_MODEL:
                model.model_path = str(path)
                model.parent_model = layer.get("from", "")
            elif mt in (MT_TEMPLATE, "application/vnd.ollama.image.prompt"):
                model.template = path.read_text()
                model.has_template = True
            elif mt == MT_SYSTEM:
                model.system = path.read_text()
            elif mt == MT_PARAMS:
                model.params = json.loads(path.read_bytes())
            elif mt == MT_LICENSE:
                model.license.append(path.read_text())
        return model


# ggml_type -> fs/ggml TensorType.String()
TENSOR_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
                10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
                17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS",
                24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0",
                35: "TQ2_0", 39: "MXFP4"}


def tensor_infos(path: str) -> list[dict]:
    """/api/show's ``tensors``: [{"name", "type", "shape"}] in file order (shape in ggml ne order)."""
    with open(path, "rb") as f:
        r = gguf._FileReader(f)  # the shared reader's primitives; tasks/gguf.py stops before tensors
        _, n_tensors, n_kv = r.header()
        r.kv_section(n_kv, 0)
        out = []
        for _ in range(n_tensors):
            name = r.string()
            shape = [r.unpack("Q") for _ in range(r.unpack("I"))]  # in the file's byte order
            kind = r.unpack("I")
            r.unpack("Q")  # offset
            out.append({"name": name, "type": TENSOR_TYPES.get(kind, "unknown"), "shape": shape})
        return out
