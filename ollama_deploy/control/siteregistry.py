"""The site registry: the control node loads each model into a registry at the site once, and every
host pulls it from there over the LAN with Ollama's own client.

Loading speaks the registry's own upload API (OCI distribution spec: HEAD a blob, else POST an
upload and PUT its bytes with the digest; then PUT the manifest), so any distribution registry
works, Debian's docker-registry included. A blob the registry has is not sent again, and a model
whose manifest the registry already serves with the same digest costs one HEAD.

On a host the model is pulled as ``<registry>/<namespace>/<model>:<tag>``, copied to its ordinary
name (``ollama cp`` writes only a manifest) and the site name removed (``ollama rm`` keeps blobs
another manifest names: manifest.RemoveLayers in Ollama 0.32.15), so clients see what a direct pull
gives.

The Ollama release artifact goes the same way: loaded once as a blob of the repository
``ollama-deploy/releases`` (its sha256 is its digest), then fetched by each host from the site's blob
URL (curl follows the front's 307) and checked against the same pinned sha256. No manifest names it, so
``registry garbage-collect`` removes it; the next run that needs it sends it again.

Loads the hosts will need (noted at plan time with ``expected``) start in the background once the
registry serves (``preload``, called by the registry host's last step), so the uplink carries them
while the hosts install; a host's own load call then waits for, or finds done, what was started.

Example:
    load_model("qwen2.5:0.5b", settings)      # -> bytes sent to the site registry (0 when it had it)
    site_name("qwen2.5:0.5b", settings)       # -> 'models.site:5443/library/qwen2.5:0.5b'
    load_release(artifact, settings); release_url(artifact, settings)   # -> 'https://models.site:5443/v2/...'
"""
from __future__ import annotations

import functools
import hashlib
import threading
import urllib.parse
from pathlib import Path

import requests
from pyinfra import logger

from ollama_deploy.control.fleetcache import FleetCacheError, cached_model, release_for
from ollama_deploy.gocompat.names import parse_model_name

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"  # what Ollama writes and asks for
RELEASES_REPO = "ollama-deploy/releases"
_LOADED: dict[tuple[str, str], int] = {}  # (registry, model or release sha256) -> bytes sent, this run
_GUARD = threading.Lock()  # gevent-aware under pyinfra: one load per model, the other hosts wait
_EXPECTED: list[functools.partial] = []  # loads noted at plan time, for preload()


class SiteRegistryError(RuntimeError):
    pass


def site_name(model: str, settings) -> str:
    """The name a host pulls: the site registry's host[:port], the model's namespace, model and tag."""
    _, namespace, name, tag = parse_model_name(model)
    return f"{urllib.parse.urlsplit(settings.ollama_site_registry).netloc}/{namespace}/{name}:{tag}"


class _SiteSession(requests.Session):
    """Verifies against the site CA: requests lets REQUESTS_CA_BUNDLE override a session's `verify`,
    so the CA goes with each request."""

    def __init__(self, ca_file: str | None):
        super().__init__()
        self.ca = ca_file or True

    def request(self, *args, **kwargs):
        kwargs.setdefault("verify", self.ca)
        return super().request(*args, **kwargs)


def _check(resp: requests.Response, what: str) -> requests.Response:
    if resp.status_code >= 400:
        raise SiteRegistryError(f"site registry: {what}: HTTP {resp.status_code} {resp.text[:200].strip()}")
    return resp


def _upload(session: requests.Session, base: str, repo: str, digest: str, path) -> int:
    """Send one blob unless the registry has it; returns the bytes sent."""
    if session.head(f"{base}/v2/{repo}/blobs/{digest}", timeout=30).status_code == 200:
        return 0
    start = _check(session.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=30), f"start upload of {digest}")
    location = urllib.parse.urljoin(f"{base}/", start.headers["Location"])
    with open(path, "rb") as body:  # streamed: a model's weights are not read into memory
        _check(session.put(location, params={"digest": digest}, data=body,
                           headers={"Content-Type": "application/octet-stream"}, timeout=None),
               f"upload of {digest}")
    return path.stat().st_size


def _load(model: str, settings) -> int:
    cached = cached_model(model, settings.ollama_registry_url, settings.ollama_fleet_cache_dir)
    _, namespace, name, tag = parse_model_name(model)
    base, repo = settings.ollama_site_registry.rstrip("/"), f"{namespace}/{name}"
    manifest = cached.manifest.read_bytes()
    digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    session = _SiteSession(settings.ollama_site_ca_file)
    head = session.head(f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE}, timeout=30)
    if head.status_code == 200 and head.headers.get("Docker-Content-Digest") == digest:
        return 0
    sent = sum(_upload(session, base, repo, blob.replace("sha256-", "sha256:"), path)
               for blob, path in cached.blobs.items())
    _check(session.put(f"{base}/v2/{repo}/manifests/{tag}", data=manifest,
                       headers={"Content-Type": MANIFEST_TYPE}, timeout=30), f"manifest of {model}")
    logger.info(f"site registry {base}: loaded {model} ({sent} bytes sent)")
    return sent + len(manifest)


def _once(key: tuple[str, str], load) -> int:
    """Run `load` once per run for `key` (the other hosts wait for the first); 0 for later calls."""
    with _GUARD:
        if key in _LOADED:
            return 0
        try:
            _LOADED[key] = load()
        except (requests.RequestException, FleetCacheError) as e:
            raise SiteRegistryError(f"site registry {key[0]}: {key[1]}: {e}") from None
        return _LOADED[key]


def load_model(model: str, settings) -> int:
    """Make the site registry serve `model` (fetched once into the fleet cache, then uploaded);
    returns the bytes this call sent. Later calls in this run, from any host, return 0."""
    return _once((settings.ollama_site_registry, model), lambda: _load(model, settings))


def release_url(artifact, settings) -> str:
    """Where hosts fetch `artifact` (a control.release.Artifact) once it is loaded."""
    return f"{settings.ollama_site_registry.rstrip('/')}/v2/{RELEASES_REPO}/blobs/sha256:{artifact.sha256}"


def load_release(artifact, settings) -> int:
    """Make the site registry serve the release `artifact`: an air-gapped one from its local path, else
    fetched and verified once in the fleet cache directory; returns the bytes this call sent."""
    def load() -> int:
        path = Path(artifact.local_path) if artifact.local_path else release_for(artifact, settings)
        session = _SiteSession(settings.ollama_site_ca_file)
        base = settings.ollama_site_registry.rstrip("/")
        return _upload(session, base, RELEASES_REPO, f"sha256:{artifact.sha256}", path)
    return _once((settings.ollama_site_registry, f"{artifact.name} {artifact.sha256[:12]}"), load)


def expected(load: functools.partial) -> functools.partial:
    """Note, at plan time, a load (of load_model or load_release) a host will need; returns it."""
    if load not in _EXPECTED:
        _EXPECTED.append(load)
    return load


def preload() -> None:
    """Start the expected loads in the background (a greenlet under pyinfra), releases first: hosts
    fetch the release before their models. A failure is left to the host's own call to report."""
    jobs = sorted(_EXPECTED, key=lambda load: load.func is not load_release)
    _EXPECTED.clear()

    def run() -> None:
        for load in jobs:
            try:
                load()
            except Exception as e:  # noqa: BLE001 - reported by the host whose step needs it
                logger.debug(f"site registry preload: {e}")
    if jobs:
        threading.Thread(target=run, daemon=True, name="site-registry-preload").start()


def clear_loaded() -> None:
    """Forget what this run loaded and expected (tests)."""
    _LOADED.clear()
    _EXPECTED.clear()
