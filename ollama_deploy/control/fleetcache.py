"""Fleet cache: the control node fetches each release artifact and each model once (checksum and
digests verified) and hosts are seeded from it over SSH, instead of every host downloading them.

Models are kept in Ollama's own layout (manifests/<host>/<namespace>/<model>/<tag>, blobs/sha256-<hex>),
so seeding a host is copying files into its models dir; Ollama lists a model once its manifest and
blobs are there. Air-gapped sites point `local_dir` at a directory in that same layout (a copy of a
connected machine's ~/.ollama/models); its blobs are verified and used in place.

A deploy runs one process for the whole fleet: each file is verified once per run, not once per host
(hashing a 5 GB model eight times would cost minutes), and each manifest is read once.

Example:
    release_for(artifact_for(settings, "x86_64"), settings)   # -> local path of the verified artifact
    model_for("qwen2.5-coder:7b", settings)                   # -> CachedModel (manifest, blobs, weights)
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from pyinfra import logger

from ollama_deploy.control.modelinfo import ModelNotFound, registry_base
from ollama_deploy.control.release import auth_headers
from ollama_deploy.gocompat.gguf import read_kv
from ollama_deploy.gocompat.names import parse_model_name
from ollama_deploy.lib.modelshape import ModelInfo, model_info_from_kv

_LOCKS: dict[str, threading.Lock] = {}  # one download per file, however many hosts ask at once
_LOCKS_GUARD = threading.Lock()
MIB = 2**20
PROGRESS_EVERY = 5.0  # seconds between progress lines for a long download
PROGRESS_FROM = 16 * MIB  # smaller files are fetched without a word
_VERIFIED: dict[Path, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256) checked this run
_MODELS: dict[tuple[str, str, str, str | None], CachedModel] = {}


class FleetCacheError(RuntimeError):
    pass


def fleet_cache_on(settings) -> bool:
    """Models from a local directory can only reach hosts through the fleet cache."""
    return settings.ollama_fleet_cache or settings.ollama_models_local_dir is not None


def clear_cache() -> None:
    """Forget what this run verified and read (tests; a long-lived process that wants a fresh check)."""
    _VERIFIED.clear()
    _MODELS.clear()


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def sha256_of(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fingerprint(path: Path, sha256: str) -> tuple[int, int, str]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, sha256


def verified(path: Path, sha256: str) -> bool:
    """`path` exists and holds `sha256` (hashed once per run while its size and mtime stay the same)."""
    try:
        seen = _fingerprint(path, sha256)
    except FileNotFoundError:
        return False
    if _VERIFIED.get(path) == seen:
        return True
    if sha256_of(path) != sha256:
        return False
    _VERIFIED[path] = seen
    return True


def fetch_verified(url: str, dest: Path, sha256: str) -> Path:
    """Download `url` to `dest` unless it is already there with `sha256`; verify before it is kept.
    An interrupted download resumes where it stopped (HTTP Range), as Ollama's own pulls do."""
    with _lock(str(dest)):
        if verified(dest, sha256):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_of(dest)
        try:
            _download(url, partial)
        except requests.RequestException as e:
            raise FleetCacheError(f"cannot fetch {url}: {e} (the part fetched is kept and resumed next run)") from None
        got = sha256_of(partial)
        if got != sha256:
            partial.unlink()
            raise FleetCacheError(f"sha256 mismatch for {url}: expected {sha256}, got {got}")
        partial.rename(dest)
        _VERIFIED[dest] = _fingerprint(dest, sha256)
        return dest


def partial_of(dest: Path) -> Path:
    """Where the download of `dest` collects (resumed from its end)."""
    return dest.with_name(dest.name + ".partial")


def blob_partial(cache_dir: str, digest: str) -> Path:
    """The partial download of a model blob ("sha256:<hex>") in the fleet cache under `cache_dir`."""
    return partial_of(Path(cache_dir).expanduser() / "models" / "blobs" / digest.replace(":", "-", 1))


def _download(url: str, partial: Path) -> None:
    """Append to `partial` from where it ends; log progress every PROGRESS_EVERY seconds."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {**auth_headers(), **({"Range": f"bytes={have}-"} if have else {})}
    with requests.get(url, headers=headers, stream=True, timeout=60) as reply:
        if reply.status_code == 416:  # the part is already whole; verification decides
            return
        reply.raise_for_status()
        resumed = reply.status_code == 206
        total = int(reply.headers.get("Content-Length", 0)) + (have if resumed else 0)
        done, last = (have if resumed else 0), time.monotonic()
        if resumed or total >= PROGRESS_FROM:
            logger.info(f"fleet cache: fetching {url} ({total / MIB:.0f} MiB"
                        + (f", resuming at {have / MIB:.0f} MiB)" if resumed else ")"))
        with open(partial, "ab" if resumed else "wb") as f:
            for chunk in reply.iter_content(1 << 20):
                f.write(chunk)
                done += len(chunk)
                if time.monotonic() - last >= PROGRESS_EVERY:
                    last = time.monotonic()
                    logger.info(f"fleet cache: {url}: {done / MIB:.0f} of {total / MIB:.0f} MiB")


def release_for(artifact, settings) -> Path:
    """The host's release artifact from the fleet cache (fetched and verified once per run)."""
    # Keyed by checksum too: one fleet may install different builds under one file name (another
    # mirror per group, a rebuilt artifact), and each host must get the one it pinned.
    dest = (Path(settings.ollama_fleet_cache_dir).expanduser() / "releases" / f"v{settings.ollama_version}"
            / artifact.sha256[:16] / artifact.name)
    return fetch_verified(artifact.url, dest, artifact.sha256)


def model_for(name: str, settings, digest: str | None = None) -> CachedModel:
    """A model from the fleet cache or the air-gapped directory the host's settings name; `digest`:
    the manifest digest of the copy the host already has, if any."""
    return cached_model(name, settings.ollama_registry_url, settings.ollama_fleet_cache_dir,
                        settings.ollama_models_local_dir, digest)


@dataclass(frozen=True)
class CachedModel:
    manifest_relpath: str  # under the models dir: manifests/<host>/<ns>/<model>/<tag>
    manifest: Path
    blobs: dict[str, Path]  # "sha256-<hex>" file name -> local path
    weights: Path  # the GGUF model layer

    def info(self, name: str) -> ModelInfo:
        """Metadata for the memory budget, read from the cached file (no second trip to the registry)."""
        return model_info_from_kv(name, read_kv(str(self.weights)), self.weights.stat().st_size)


def cached_model(name: str, registry: str, cache_dir: str, local_dir: str | None = None,
                 digest: str | None = None) -> CachedModel:
    """The model's manifest and every blob it names, digests verified: fetched once into the cache,
    or taken from `local_dir` (Ollama's layout). Later calls in this run get the same answer. A host
    that already has the model (its manifest `digest`) is never re-pulled, so when the cache holds
    that same manifest, the registry is not asked at all: a no-op run fetches nothing."""
    key = (name, registry, cache_dir, local_dir)
    with _lock(repr(key)):
        if key in _MODELS:
            return _MODELS[key]
        if digest and not local_dir:
            kept = _kept(name, Path(cache_dir).expanduser() / "models", digest)
            if kept is not None:
                return kept  # not remembered for the run: a host without the model still asks the registry
        _MODELS[key] = _from_local_dir(name, Path(local_dir).expanduser()) if local_dir \
            else _from_registry(name, registry, Path(cache_dir).expanduser() / "models")
        return _MODELS[key]


def _relpath(name: str) -> str:
    host, namespace, model, tag = parse_model_name(name)
    return f"manifests/{host}/{namespace}/{model}/{tag}"


def _layers(name: str, manifest: bytes) -> list[dict]:
    try:
        parsed = json.loads(manifest)
        return [parsed["config"], *parsed["layers"]]
    except (ValueError, KeyError, TypeError):
        raise FleetCacheError(f"{name}: the manifest is not an Ollama image manifest") from None


def _blob(layer: dict) -> tuple[str, str]:
    """(file name under blobs/, hex sha256) of a manifest layer: "sha256:<hex>" -> "sha256-<hex>"."""
    return layer["digest"].replace(":", "-", 1), layer["digest"].split(":", 1)[1]


def _cached(name: str, relpath: str, manifest: Path, blobs: dict[str, Path], layers: list[dict]) -> CachedModel:
    weights = [blobs[_blob(layer)[0]] for layer in layers
               if layer.get("mediaType") == "application/vnd.ollama.image.model"]
    if not weights:
        raise FleetCacheError(f"{name}: the manifest has no model layer")
    return CachedModel(relpath, manifest, blobs, weights[0])


def _kept(name: str, root: Path, digest: str) -> CachedModel | None:
    """The cache's copy of `name` if its manifest has `digest` and every blob it names verifies."""
    manifest = root / _relpath(name)
    try:
        content = manifest.read_bytes()
    except OSError:
        return None
    if "sha256:" + hashlib.sha256(content).hexdigest() != digest:
        return None
    layers = _layers(name, content)
    blobs = {file_name: root / "blobs" / file_name for file_name, _ in map(_blob, layers)}
    if not all(verified(blobs[file_name], sha256) for file_name, sha256 in map(_blob, layers)):
        return None
    return _cached(name, _relpath(name), manifest, blobs, layers)


def _from_registry(name: str, registry: str, root: Path) -> CachedModel:
    host, namespace, model, tag = parse_model_name(name)
    base = f"{registry_base(name, registry)}/v2/{namespace}/{model}"
    url = f"{base}/manifests/{tag}"
    try:
        reply = requests.get(url, timeout=30, headers={
            **auth_headers(), "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        if reply.status_code == 404:  # the registry has no such model: the plan skips it, the others go on
            raise ModelNotFound(f"model {name!r}: GET {url} returned HTTP 404")
        reply.raise_for_status()
    except requests.RequestException as e:
        raise FleetCacheError(f"cannot fetch the manifest of {name}: {e}") from None
    layers = _layers(name, reply.content)
    blobs = {}
    for layer in layers:
        file_name, sha256 = _blob(layer)
        blobs[file_name] = fetch_verified(f"{base}/blobs/{layer['digest']}", root / "blobs" / file_name, sha256)
    relpath = _relpath(name)
    manifest_path = root / relpath
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_name(manifest_path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(reply.content)  # Ollama checks the manifest's own digest: keep its exact bytes
    tmp.replace(manifest_path)
    return _cached(name, relpath, manifest_path, blobs, layers)


def _from_local_dir(name: str, root: Path) -> CachedModel:
    relpath = _relpath(name)
    manifest = root / relpath
    if not manifest.is_file():
        raise FleetCacheError(f"{name} is not in {root} (no {relpath})")
    layers = _layers(name, manifest.read_bytes())
    blobs = {}
    for layer in layers:
        file_name, sha256 = _blob(layer)
        blobs[file_name] = root / "blobs" / file_name
        if not verified(blobs[file_name], sha256):
            raise FleetCacheError(f"{name}: {blobs[file_name]} is missing or does not match its digest")
    return _cached(name, relpath, manifest, blobs, layers)
