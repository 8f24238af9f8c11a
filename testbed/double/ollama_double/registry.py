"""Pulling models from a Docker-registry-v2 style server (server/images.go PullModel).

The default host (registry.ollama.ai) is served by the testbed mirror named
in config.json; any other host is contacted directly (plain http when the
request says ``insecure``).  Blobs download to ``sha256-<hex>-partial`` and
resume with an HTTP Range request; a server that ignores Range (answers 200)
simply restarts the file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from . import store as st
from .names import DEFAULT_HOST, Name

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
PROGRESS_INTERVAL = 0.060  # server/download.go ticks every 60 ms
CHUNK = 256 * 1024

_blob_locks: dict[str, threading.Lock] = {}
_blob_locks_guard = threading.Lock()


class PullError(Exception):
    pass


def _lock_for(digest: str) -> threading.Lock:
    with _blob_locks_guard:
        return _blob_locks.setdefault(digest, threading.Lock())


def base_url(name: Name, insecure: bool, default_registry: str) -> str:
    if name.host.lower() == DEFAULT_HOST:
        return default_registry.rstrip("/")
    scheme = name.scheme or "https"
    if scheme != "http" and insecure:
        scheme = "http"  # images.go: makeRequest downgrades when insecure
    return f"{scheme}://{name.host}"


class _GoProxyHandler(urllib.request.ProxyHandler):
    """Proxies from the environment as Go's net/http uses them (httpproxy.useProxy): never for
    ``localhost`` or a loopback address, whatever HTTP(S)_PROXY says. (urllib would send a
    registry on 127.0.0.1 through the proxy unless NO_PROXY named it.)"""

    def proxy_open(self, req, proxy, type):
        host = urllib.parse.urlsplit(f"//{req.host}").hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host.lower() == "localhost"
        if loopback:
            return None  # the plain http/https handler connects directly
        return super().proxy_open(req, proxy, type)


_OPENER = urllib.request.build_opener(_GoProxyHandler())


def _open(url: str, headers: dict | None = None, timeout: float = 30):
    req = urllib.request.Request(url, headers={"User-Agent": "ollama-test-double", **(headers or {})})
    return _OPENER.open(req, timeout=timeout)  # noqa: S310 - registry URL from config


def _http_error(e: Exception, url: str) -> str:
    if isinstance(e, urllib.error.HTTPError):
        if e.code == 404:
            return "file does not exist"  # os.ErrNotExist
        try:
            body = e.read().decode("utf-8", "replace")
        except OSError:
            body = ""
        return f"{e.code}: {body}"
    reason = getattr(e, "reason", e)
    return f'Get "{url}": {reason}'


def fetch_manifest(name: Name, base: str) -> bytes:
    url = f"{base}/v2/{name.namespace}/{name.model}/manifests/{name.tag}"
    try:
        with _open(url, {"Accept": ACCEPT}) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise PullError(f"pull model manifest: {_http_error(e, url)}") from e


def download_blob(store: st.Store, name: Name, base: str, layer: dict, progress, cancelled) -> bool:
    """Download one blob; returns True on a cache hit (already on disk)."""
    digest = layer["digest"]
    short = digest[7:19]
    final = store.blob_path(digest)
    with _lock_for(digest):
        if final.exists():
            size = final.stat().st_size
            progress({"status": f"pulling {short}", "digest": digest, "total": size, "completed": size})
            return True
        total = int(layer.get("size", 0))
        partial = final.with_name(final.name + "-partial")
        have = partial.stat().st_size if partial.exists() else 0
        if total and have > total:
            partial.unlink()
            have = 0
        url = f"{base}/v2/{name.namespace}/{name.model}/blobs/{digest}"
        progress({"status": f"pulling {short}", "digest": digest, "total": total, "completed": have})
        if total and have == total:  # fully downloaded before an interruption: only the rename is left
            os.replace(partial, final)
            progress({"status": f"pulling {short}", "digest": digest, "total": total, "completed": have})
            return False
        try:
            _fetch(url, partial, have, lambda n: progress(
                {"status": f"pulling {short}", "digest": digest, "total": total, "completed": n}), cancelled)
        except urllib.error.HTTPError as e:
            if e.code != 416 or not have:
                raise PullError(_http_error(e, url)) from e
            partial.unlink(missing_ok=True)  # stale partial the server cannot resume: start over
            try:
                _fetch(url, partial, 0, lambda n: progress(
                    {"status": f"pulling {short}", "digest": digest, "total": total, "completed": n}), cancelled)
            except (urllib.error.URLError, OSError) as e2:
                raise PullError(_http_error(e2, url)) from e2
        except (urllib.error.URLError, OSError) as e:
            raise PullError(_http_error(e, url)) from e
        os.replace(partial, final)
        progress({"status": f"pulling {short}", "digest": digest, "total": total,
                  "completed": final.stat().st_size})
        return False


def _fetch(url: str, partial, have: int, report, cancelled) -> None:
    """GET url into partial, resuming at byte ``have``; report(completed) at most every 60 ms."""
    headers = {"Range": f"bytes={have}-"} if have else {}
    with _open(url, headers, timeout=60) as resp:
        if have and resp.status != 206:
            have = 0  # Range ignored: start over
        last = time.monotonic()
        with open(partial, "ab" if have else "wb") as out:
            while True:
                if cancelled():
                    raise PullError("context canceled")
                chunk = resp.read(CHUNK)
                if not chunk:
                    return
                out.write(chunk)
                have += len(chunk)
                now = time.monotonic()
                if now - last >= PROGRESS_INTERVAL:
                    last = now
                    report(have)


def verify_blob(store: st.Store, digest: str) -> None:
    path = store.blob_path(digest)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if "sha256:" + h.hexdigest() != digest:
        path.unlink(missing_ok=True)
        raise PullError("digest mismatch, file must be downloaded again")


def pull(store: st.Store, name: Name, insecure: bool, default_registry: str, progress,
         no_prune: bool = False, cancelled=lambda: False) -> None:
    """PullModel: stream progress dicts through ``progress``; raise PullError on failure."""
    delete = set()
    try:
        old = store.read_manifest(name)
        delete = {layer["digest"] for layer in old.layers + [old.config] if layer.get("digest")}
    except (OSError, ValueError):
        pass
    if name.scheme == "http" and not insecure:
        raise PullError("insecure protocol http")
    progress({"status": "pulling manifest"})
    base = base_url(name, insecure, default_registry)
    raw = fetch_manifest(name, base)
    try:
        mf = json.loads(raw)
        layers = list(mf.get("layers") or [])
        if (mf.get("config") or {}).get("digest"):
            layers.append(mf["config"])
    except (ValueError, AttributeError) as e:
        raise PullError(f"pull model manifest: {e}") from e
    hits: dict[str, bool] = {}
    for layer in layers:
        hit = download_blob(store, name, base, layer, progress, cancelled)
        hits[layer["digest"]] = hits.get(layer["digest"], True) and hit
        delete.discard(layer["digest"])
    progress({"status": "verifying sha256 digest"})
    for digest, hit in hits.items():
        if not hit:
            verify_blob(store, digest)
    progress({"status": "writing manifest"})
    store.write_manifest_bytes(name, raw)
    if not no_prune and delete:
        progress({"status": "removing unused layers"})
        store.delete_unused(delete)
    progress({"status": "success"})
