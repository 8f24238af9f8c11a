"""Ollama's on-disk model store: names, manifests and blobs.

Layout (``types/model/name.go``, ``manifest/paths.go``)::

    $OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag>
    $OLLAMA_MODELS/blobs/sha256-<64 hex>

Names are parsed in names.py; the records read from disk (Manifest, Model)
are defined in model.py.
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

from .gofmt import go_json
from .model import Manifest, Model
from .names import Name

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
