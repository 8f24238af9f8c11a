"""Fleet cache: the control node fetches each release artifact and each model once (checksum and
digests verified) and hosts are seeded from it over SSH, instead of every host downloading them.

Models are kept in Ollama's own layout (manifests/<host>/<namespace>/<model>/<tag>, blobs/sha256-<hex>),
so seeding a host is copying files into its models dir; Ollama lists a model once its manifest and
blobs are there. Re-runs move nothing already present and intact (pyinfra compares checksums).

Example:
    cached_release(artifact, "~/.cache/ollama-deploy")       # -> local path of the verified artifact
    cached_model("qwen2.5-coder:7b", "https://registry.ollama.ai", "~/.cache/ollama-deploy")
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import requests

from .gguf import read_kv
from .modelinfo import ModelInfo, model_info_from_kv, parse_model_name, registry_base
from .release import auth_headers

_LOCKS: dict[str, threading.Lock] = {}  # one download per file, however many hosts ask at once
_LOCKS_GUARD = threading.Lock()


class FleetCacheError(RuntimeError):
    pass


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_verified(url: str, dest: Path, sha256: str) -> Path:
    """Download `url` to `dest` unless it is already there with `sha256`; verify before it is kept."""
    with _lock(str(dest)):
        if dest.exists() and _sha256(dest) == sha256:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        try:
            with requests.get(url, headers=auth_headers(), stream=True, timeout=60) as reply:
                reply.raise_for_status()
                with open(partial, "wb") as f:
                    for chunk in reply.iter_content(1 << 20):
                        f.write(chunk)
        except requests.RequestException as e:
            raise FleetCacheError(f"cannot fetch {url}: {e}") from None
        got = _sha256(partial)
        if got != sha256:
            partial.unlink()
            raise FleetCacheError(f"sha256 mismatch for {url}: expected {sha256}, got {got}")
        partial.rename(dest)
        return dest


def cached_release(url: str, name: str, version: str, sha256: str, cache_dir: str) -> Path:
    return fetch_verified(url, Path(cache_dir).expanduser() / "releases" / f"v{version}" / name, sha256)


@dataclass(frozen=True)
class CachedModel:
    manifest_relpath: str  # under the models dir: manifests/<host>/<ns>/<model>/<tag>
    manifest: Path
    blobs: dict[str, Path]  # "sha256-<hex>" file name -> local path
    weights: Path  # the GGUF model layer

    def info(self, name: str) -> ModelInfo:
        """Metadata for the memory budget, read from the cached file (no second trip to the registry)."""
        return model_info_from_kv(name, read_kv(str(self.weights)), self.weights.stat().st_size)


def cached_model(name: str, registry: str, cache_dir: str) -> CachedModel:
    """The model's manifest and every blob it names, fetched once into the cache, digests verified."""
    host, namespace, model, tag = parse_model_name(name)
    base = f"{registry_base(name, registry)}/v2/{namespace}/{model}"
    root = Path(cache_dir).expanduser() / "models"
    relpath = f"manifests/{host}/{namespace}/{model}/{tag}"
    try:
        reply = requests.get(f"{base}/manifests/{tag}", timeout=30, headers={
            **auth_headers(), "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        reply.raise_for_status()
    except requests.RequestException as e:
        raise FleetCacheError(f"cannot fetch the manifest of {name}: {e}") from None
    manifest = json.loads(reply.content)
    blobs, weights = {}, None
    for layer in [manifest["config"], *manifest["layers"]]:
        algorithm, hexdigest = layer["digest"].split(":", 1)
        file_name = f"{algorithm}-{hexdigest}"
        blobs[file_name] = fetch_verified(f"{base}/blobs/{layer['digest']}", root / "blobs" / file_name, hexdigest)
        if layer.get("mediaType") == "application/vnd.ollama.image.model":
            weights = blobs[file_name]
    if weights is None:
        raise FleetCacheError(f"{name}: the manifest has no model layer")
    manifest_path = root / relpath
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_name(manifest_path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(reply.content)  # Ollama checks the manifest's own digest: keep its exact bytes
    tmp.replace(manifest_path)
    return CachedModel(relpath, manifest_path, blobs, weights)
