"""Model metadata for the memory budget, read from the registry without downloading the model.

The deploy must refuse a plan whose models cannot fit before it touches a host,
so the control node needs each model's size and attention shape.  Both come
from the registry: the manifest gives the weights blob and its size, and the
GGUF header at the start of that blob gives the KV map (``ollama_deploy/gocompat/gguf.py``).
Only the first few MiB of the blob are fetched, with HTTP Range requests; where the control node
will fetch the whole blob later (the site registry's load), those bytes are kept as the start of that
download (``keep_start``), so the uplink carries each byte once.

Example::

    info = fetch_model_info("qwen2.5-coder:7b")
    need = info.weights_bytes + kv_cache_bytes(info, num_ctx=8192, num_parallel=2, kv_type="q8_0")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from ollama_deploy.gocompat import gguf
from ollama_deploy.gocompat.names import DEFAULT_HOST, _parse_name
from ollama_deploy.lib.modelshape import ModelInfo, ModelInfoError, model_info_from_kv

DEFAULT_REGISTRY = "https://registry.ollama.ai"

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_MODEL = "application/vnd.ollama.image.model"

MIB = 1024 * 1024
# Most GGUF headers fit in 2 MiB; ones with large tokenizer vocabularies (150k+
# tokens plus merges) take several MiB, so double up to a cap that stops a
# corrupt length field from making us download the whole model.
FIRST_RANGE = 2 * MIB
MAX_RANGE = 64 * MIB
_CHUNK = 256 * 1024
# Per-layer arrays (head_count_kv) have one entry per layer; longer arrays are
# tokenizer vocabularies, which the reader then skips without decoding.
MAX_ARRAY = 4096


class ModelNotFound(ModelInfoError):
    """The registry answered 404: it has no such model (or tag)."""


# -- registry ---------------------------------------------------------------------------------


def registry_base(name: str, registry: str = DEFAULT_REGISTRY) -> str:
    """The base URL (scheme://host[:port]) that serves ``name``'s manifest and blobs.

    Names on the default host use ``registry`` (so a mirror can stand in for
    registry.ollama.ai).  A name with its own host uses that host: with the
    scheme the name gives ("http://10.0.0.5:8080/ns/m"), else the scheme of
    ``registry`` when ``registry`` is that same host, else https (Ollama's
    default; it uses plain http only when asked to be insecure).

    Example::

        registry_base("llama3.2")                                    # -> "https://registry.ollama.ai"
        registry_base("10.0.0.5:8080/ns/m:t", "http://10.0.0.5:8080")  # -> "http://10.0.0.5:8080"
    """
    scheme, host, _, _, _ = _parse_name(name)
    reg = urlsplit(registry.rstrip("/"))
    if scheme:
        return f"{scheme}://{host}"
    if host.lower() == DEFAULT_HOST or host.lower() == reg.netloc.lower():
        return registry.rstrip("/")
    return f"https://{host}"


def _get(name: str, url: str, timeout: float, **headers) -> requests.Response:
    try:
        r = requests.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=True)
    except requests.RequestException as e:
        raise ModelInfoError(f"model {name!r}: GET {url} failed: {e}") from None
    if r.status_code not in (200, 206):
        r.close()
        error = ModelNotFound if r.status_code == 404 else ModelInfoError
        raise error(f"model {name!r}: GET {url} returned HTTP {r.status_code}")
    return r


class _BlobPrefix:
    """The first bytes of a blob, fetched in growing ranges.

    Servers that honour Range answer 206 and we ask only for the bytes we lack;
    a server that ignores Range answers 200 with the whole blob, which we keep
    streaming from and abandon (close) once we have enough.
    """

    def __init__(self, name: str, url: str, size: int, timeout: float):
        self.name, self.url, self.size, self.timeout = name, url, size, timeout
        self.buf = bytearray()
        self.stream: requests.Response | None = None  # an open 200 response when the server ignored Range

    def ensure(self, n: int) -> None:
        """Have at least ``n`` bytes in ``buf`` (fewer only when the blob is shorter)."""
        n = min(n, self.size) if self.size > 0 else n
        while len(self.buf) < n:
            before = len(self.buf)
            if self.stream is not None:
                self._read(self.stream, n)
            else:
                r = _get(self.name, self.url, self.timeout, Range=f"bytes={before}-{n - 1}")
                if r.status_code == 200:
                    # Range ignored: the body is the whole blob from byte 0.
                    self.buf.clear()
                    self.stream = r
                    before = 0
                    self._read(r, n)
                else:
                    with r:
                        start = self._range_start(r)
                        if start != before:
                            raise ModelInfoError(f"model {self.name!r}: GET {self.url} asked for bytes "
                                                 f"{before}-{n - 1} but got Content-Range "
                                                 f"{r.headers.get('Content-Range')!r}")
                        self._read(r, n)  # a server may send less than asked: loop for the rest
            if len(self.buf) == before:
                return  # end of the blob

    def _range_start(self, r) -> int | None:
        # Content-Range: bytes <start>-<end>/<size>
        try:
            return int(r.headers.get("Content-Range", "").split()[1].split("-")[0])
        except (IndexError, ValueError):
            return None

    def _read(self, r, n: int) -> None:
        try:
            while len(self.buf) < n:
                chunk = r.raw.read(min(_CHUNK, n - len(self.buf)), decode_content=True)
                if not chunk:
                    break
                self.buf += chunk
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise ModelInfoError(f"model {self.name!r}: reading {self.url} failed: {e}") from None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()  # drops the connection instead of reading the rest
            self.stream = None


def _keep(prefix: bytes, path: Path) -> None:
    """Leave `prefix` at `path` (a download's partial file, which resumes from its end) unless a
    longer part is there already."""
    try:
        if path.exists() and path.stat().st_size >= len(prefix):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(prefix)
        tmp.replace(path)
    except OSError:
        pass  # the whole blob is fetched later instead: more bytes, same result


def _read_header(name: str, url: str, size: int, timeout: float, keep_to: Path | None = None) -> dict:
    blob = _BlobPrefix(name, url, size, timeout)
    want = FIRST_RANGE
    try:
        while True:
            blob.ensure(want)
            have = len(blob.buf)
            try:
                kv = gguf.parse_kv_prefix(bytes(blob.buf), max_array=MAX_ARRAY)
                if keep_to is not None:
                    _keep(bytes(blob.buf), keep_to)
                return kv
            except gguf.NeedMoreBytes as e:
                needed = e.needed
            except gguf.GGUFError as e:
                raise ModelInfoError(f"model {name!r}: {url} is not a GGUF file: {e}") from None
            if have < want:  # ensure() stopped short: the blob ended
                raise ModelInfoError(f"model {name!r}: {url} ended after {have} bytes, inside the GGUF header "
                                     f"(needs at least {needed})")
            while want < needed:
                want *= 2
            if want > MAX_RANGE:
                raise ModelInfoError(f"model {name!r}: GGUF header of {url} is larger than "
                                     f"{MAX_RANGE // MIB} MiB (needs at least {needed} bytes)")
    finally:
        blob.close()


# -- metadata -----------------------------------------------------------------------------------


_cache: dict[tuple[str, str], ModelInfo] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget cached results (tests; a long-lived process that wants fresh metadata).

    Example::

        clear_cache()
    """
    with _cache_lock:
        _cache.clear()


# Metadata by manifest digest, kept on the control node across runs: a model a host already has
# (its /api/tags digest) is never read from the registry again.
DISK_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ollama-deploy" / "model-info"


def _disk_path(digest: str) -> Path:
    return DISK_CACHE / f"{digest.removeprefix('sha256:')}.json"


def _disk_get(digest: str | None) -> ModelInfo | None:
    path = _disk_path(digest or "")
    if not digest or not path.is_file():
        return None
    try:
        fields = json.loads(path.read_text())
        return ModelInfo(**{**fields, "head_count_kv": tuple(fields["head_count_kv"])})
    except (ValueError, TypeError, KeyError):
        return None  # a stale or foreign file: read the registry again


def _disk_put(digest: str, info: ModelInfo) -> None:
    try:
        path = _disk_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(info)))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: the registry is read again next run, nothing else changes


def fetch_model_info(name: str, registry: str = DEFAULT_REGISTRY, timeout: float = 20,
                     digest: str | None = None, keep_start=None) -> ModelInfo:
    """Read ``name``'s weights size and GGUF metadata from ``registry`` without downloading it.

    GETs the manifest, finds the ``application/vnd.ollama.image.model`` layer,
    then GETs only the start of that blob (Range: bytes=0-2MiB, doubling up to
    64 MiB while the GGUF KV section is longer; redirects to a CDN are followed,
    a server ignoring Range is read only as far as needed).  Results are cached
    per ``(name, registry)``; failures are not.  ``keep_start(blob digest)``, if
    given, names a file to leave the fetched bytes in (see ``_keep``).  Raises ``ModelInfoError``
    (naming the model, the URL and the HTTP status) or ``ValueError`` for a
    malformed name.

    Example::

        info = fetch_model_info("testbed/tiny", registry="http://127.0.0.1:8000")
        info.block_count, info.head_count_kv[0]       # -> (16, 8)
    """
    key = (name, registry)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    known = _disk_get(digest)  # `digest`: the manifest digest a host reports for `name`
    if known is not None:
        return dataclasses.replace(known, name=name)
    _, _, namespace, model, tag = _parse_name(name)
    base = registry_base(name, registry)
    repo = f"{base}/v2/{namespace}/{model}"
    url = f"{repo}/manifests/{tag}"
    with _get(name, url, timeout, Accept=MT_MANIFEST) as r:
        manifest_digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
        known = _disk_get(manifest_digest)
        if known is not None:  # read before under this digest: the header is not fetched again
            return dataclasses.replace(known, name=name)
        try:
            manifest = json.loads(r.content)
            layers = manifest["layers"]
            layer = next((x for x in layers if x.get("mediaType") == MT_MODEL), None)
        except (ValueError, KeyError, TypeError, AttributeError, requests.RequestException) as e:
            raise ModelInfoError(f"model {name!r}: {url} is not a model manifest: {e}") from None
    if layer is None:
        # e.g. safetensors models, whose weights are split over tensor layers
        raise ModelInfoError(f"model {name!r}: manifest {url} has no {MT_MODEL} layer")
    try:
        digest, size = str(layer["digest"]), int(layer.get("size") or 0)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelInfoError(f"model {name!r}: manifest {url} has a malformed model layer: {e}") from None
    kv = _read_header(name, f"{repo}/blobs/{digest}", size, timeout, keep_start(digest) if keep_start else None)
    info = model_info_from_kv(name, kv, size)
    _disk_put(manifest_digest, info)
    with _cache_lock:
        _cache[key] = info
    return info


# -- memory -------------------------------------------------------------------------------------
