"""Model metadata for the memory budget, read from the registry without downloading the model.

The deploy must refuse a plan whose models cannot fit before it touches a host,
so the control node needs each model's size and attention shape.  Both come
from the registry: the manifest gives the weights blob and its size, and the
GGUF header at the start of that blob gives the KV map (``ollama_deploy/gocompat/gguf.py``).
Only the first few MiB of the blob are fetched, with HTTP Range requests.

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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from ollama_deploy.gocompat import gguf

DEFAULT_REGISTRY = "https://registry.ollama.ai"
DEFAULT_HOST = "registry.ollama.ai"  # types/model/name.go defaultHost
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

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

# Bytes per KV-cache element: ggml block types store 32 elements per block
# (f16/bf16 = 2 bytes each; a 32-element block of q8_0 = 2-byte scale + 32 x int8 = 34 bytes, q4_0
# = 2 + 16 = 18, q4_1 = 2 + 2 + 16 = 20, q5_0 = 2 + 4 + 16 = 22, q5_1 = 2 + 2 + 4 + 16 = 24,
# iq4_nl = 2 + 16 = 18), as (numerator, denominator): every type llama.cpp b10488 takes for its cache.
KV_TYPE_BYTES = {"f32": (4, 1), "f16": (2, 1), "bf16": (2, 1), "q8_0": (34, 32), "q4_0": (18, 32),
                 "q4_1": (20, 32), "iq4_nl": (18, 32), "q5_0": (22, 32), "q5_1": (24, 32)}


@dataclass(frozen=True)
class ModelInfo:
    name: str                 # as given, e.g. "qwen2.5-coder:7b" or "testbed/tiny"
    architecture: str
    weights_bytes: int        # size of the application/vnd.ollama.image.model layer
    block_count: int
    head_count: int           # HeadCountMax when the model gives a per-layer array
    head_count_kv: tuple[int, ...]   # per layer
    embedding_length: int
    key_length: int
    value_length: int
    context_length: int       # n_ctx_train
    kv_heads_in_file: bool = True  # head_count_kv given (Ollama's estimate takes 1 when it is not)
    embedding: bool = False   # <arch>.pooling_type given: cannot generate, one slot

    def slots(self, num_parallel: int) -> int:
        """The parallel slots Ollama gives this model (see gguf.parallel_slots)."""
        return gguf.parallel_slots(num_parallel, self.architecture, self.embedding)


class ModelInfoError(Exception):
    """Metadata for a model could not be read; the message names the model and what failed."""


class ModelNotFound(ModelInfoError):
    """The registry answered 404: it has no such model (or tag)."""


# -- names (types/model/name.go) ------------------------------------------------------------

_MISSING = "!MISSING!"  # name.go MissingPart: a part promised by a separator but empty
_KIND_MAXLEN = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    # name.go cutPromised: cut at the LAST sep; an empty side becomes MissingPart
    # (so "a/" or ":tag" are refused instead of silently defaulted).
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return s[:i] or _MISSING, s[i + len(sep):] or _MISSING, True


def _part_problem(kind: str, s: str) -> str | None:
    """Why ``s`` is not a valid ``kind`` part (name.go isValidPart), or None."""
    if s == _MISSING or s == "":
        return f"empty {kind}"
    if len(s) > _KIND_MAXLEN[kind]:
        return f"{kind} {s!r} is longer than {_KIND_MAXLEN[kind]} characters"
    if kind == "host" and "/" in s:
        return "too many '/'-separated parts (at most host/namespace/model)"
    for i, c in enumerate(s):
        alnum_ = c.isascii() and (c.isalnum() or c == "_")
        if i == 0:
            if not alnum_:
                return f"{kind} {s!r} must start with a letter, digit or '_'"
        elif c == "." and kind == "namespace":
            return f"namespace {s!r} may not contain '.'"
        elif c == ":" and kind != "host":
            return f"{kind} {s!r} may not contain ':'"
        elif not (alnum_ or c in "-_.:"):
            return f"{kind} {s!r} contains invalid character {c!r}"
    return None


def _parse_name(name: str) -> tuple[str, str, str, str, str]:
    """(scheme, host, namespace, model, tag); scheme is "" when the name gives none."""
    if not isinstance(name, str):
        raise ValueError(f"invalid model name {name!r}: not a string")
    # The pull route trims whitespace before parsing (internal/modelref ParseRef).
    s = name.strip()
    if not s:
        raise ValueError("invalid model name '': empty")
    scheme = host = namespace = tag = ""
    # name.go ParseNameBare: "/" is illegal in a tag, so a ':' after the last
    # '/' starts the tag; one before it belongs to the host's port.
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        model = s
    else:
        s, namespace, promised = _cut_promised(s, "/")
        if not promised:
            namespace = s
        else:
            scheme, sep, host = s.partition("://")
            if not sep:
                scheme, host = "", scheme
    for kind, part in (("host", host or DEFAULT_HOST), ("namespace", namespace or DEFAULT_NAMESPACE),
                       ("model", model), ("tag", tag or DEFAULT_TAG)):
        problem = _part_problem(kind, part)
        if problem:
            raise ValueError(f"invalid model name {name!r}: {problem}")
    if scheme not in ("", "http", "https"):
        # Ollama would build a "<scheme>://" URL from it and fail later; say so now.
        raise ValueError(f"invalid model name {name!r}: scheme {scheme!r} is not http or https")
    return scheme, host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG


def parse_model_name(name: str) -> tuple[str, str, str, str]:
    """Split a model name as Ollama does: ``(host, namespace, model, tag)`` with defaults filled.

    Mirrors ``model.ParseName`` + ``Name.IsValid`` (types/model/name.go, Ollama
    v0.32.15): ``[[scheme://]host/][namespace/]model[:tag]``, defaults
    registry.ollama.ai / library / latest.  Every part starts with a letter,
    digit or '_' and continues with those or '-', '_', '.'; a namespace may not
    contain '.', only the host may contain ':' (a port); host up to 350
    characters, the others up to 80.  Raises ``ValueError`` saying why a name
    is malformed.

    Example::

        parse_model_name("qwen2.5-coder:7b")
        # -> ("registry.ollama.ai", "library", "qwen2.5-coder", "7b")
        parse_model_name("10.0.0.5:8080/ns/m:t")   # -> ("10.0.0.5:8080", "ns", "m", "t")
        parse_model_name("llama3.2:")               # ValueError: ... empty tag
    """
    return _parse_name(name)[1:]


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
        self.stream = None  # an open 200 response when the server ignored Range

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


def _read_header(name: str, url: str, size: int, timeout: float) -> dict:
    blob = _BlobPrefix(name, url, size, timeout)
    want = FIRST_RANGE
    try:
        while True:
            blob.ensure(want)
            have = len(blob.buf)
            try:
                return gguf.parse_kv_prefix(bytes(blob.buf), max_array=MAX_ARRAY)
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


def model_info_from_kv(name: str, kv: dict, weights_bytes: int) -> ModelInfo:
    """Build a ModelInfo from a GGUF KV map (``gguf.parse_kv_prefix``, or ``/api/show``'s
    ``model_info`` with ``verbose: true``, which has the same keys).

    Follows Ollama's ``fs/ggml`` accessors: per-layer ``head_count`` arrays give
    HeadCountMax; ``head_count_kv`` may be a scalar (repeated for every layer) or
    a per-layer array (padded like ``KV.HeadCountKV``); key/value length default
    to ``embedding_length / HeadCountMin`` (``EmbeddingHeadCountMax``).  A missing
    ``head_count_kv`` means no grouped-query attention in llama.cpp (n_head_kv =
    n_head, what it allocates) but 1 in Ollama's own estimate (``HeadCountKVMin``).

    Example::

        info = model_info_from_kv("testbed/tiny", {"general.architecture": "llama",
                                  "llama.block_count": 16, ...}, weights_bytes=2 << 20)
    """
    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelInfoError(f"model {name!r}: GGUF metadata has no general.architecture")

    def get(key: str, required: bool = True):
        v = kv.get(f"{arch}.{key}")
        if v is None or v == []:
            if required:
                raise ModelInfoError(f"model {name!r}: GGUF metadata has no {arch}.{key}")
            return None
        if isinstance(v, list):
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                raise ModelInfoError(f"model {name!r}: {arch}.{key} is not a list of integers: {v[:8]!r}")
            return [int(x) for x in v]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ModelInfoError(f"model {name!r}: {arch}.{key} is not an integer: {v!r}")
        return int(v)

    def scalar(key: str, required: bool = True):
        v = get(key, required)
        if isinstance(v, list):
            raise ModelInfoError(f"model {name!r}: {arch}.{key} is an array, expected one integer")
        return v

    block_count = scalar("block_count")
    embedding_length = scalar("embedding_length")
    context_length = scalar("context_length")
    heads = get("attention.head_count")
    heads = heads if isinstance(heads, list) else [heads]
    head_max, head_min = max(heads), min(heads)
    kv_heads = get("attention.head_count_kv", required=False)
    if kv_heads is None:
        per_layer = (head_max,) * block_count
    elif isinstance(kv_heads, int) or len(kv_heads) == 1:
        per_layer = (kv_heads if isinstance(kv_heads, int) else kv_heads[0],) * block_count
    else:
        # KV.HeadCountKV: an array shorter than block_count is padded with 1.
        per_layer = tuple(kv_heads[:block_count]) + (1,) * max(block_count - len(kv_heads), 0)
    head_dim = embedding_length // head_min if head_min > 0 else 0
    key_length = scalar("attention.key_length", required=False)
    value_length = scalar("attention.value_length", required=False)
    return ModelInfo(
        name=name,
        architecture=arch,
        weights_bytes=int(weights_bytes),
        block_count=block_count,
        head_count=head_max,
        head_count_kv=per_layer,
        embedding_length=embedding_length,
        key_length=key_length if key_length else head_dim,
        value_length=value_length if value_length else head_dim,
        context_length=context_length,
        kv_heads_in_file=kv_heads is not None,
        embedding=gguf.is_embedding(kv),
    )


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
                     digest: str | None = None) -> ModelInfo:
    """Read ``name``'s weights size and GGUF metadata from ``registry`` without downloading it.

    GETs the manifest, finds the ``application/vnd.ollama.image.model`` layer,
    then GETs only the start of that blob (Range: bytes=0-2MiB, doubling up to
    64 MiB while the GGUF KV section is longer; redirects to a CDN are followed,
    a server ignoring Range is read only as far as needed).  Results are cached
    per ``(name, registry)``; failures are not.  Raises ``ModelInfoError``
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
    kv = _read_header(name, f"{repo}/blobs/{digest}", size, timeout)
    info = model_info_from_kv(name, kv, size)
    _disk_put(manifest_digest, info)
    with _cache_lock:
        _cache[key] = info
    return info


# -- memory -------------------------------------------------------------------------------------


def _ctx_total(info: ModelInfo, num_ctx: int, num_parallel: int) -> int:
    # sched.go effectiveLlamaServerContext: num_ctx clamped to n_ctx_train (when
    # known), times the parallel slots (at least 1).
    ctx = min(num_ctx, info.context_length) if info.context_length > 0 else num_ctx
    return ctx * max(num_parallel, 1)


def kv_cache_bytes(info: ModelInfo, num_ctx: int, num_parallel: int, kv_type: str = "f16") -> int:
    """KV cache size llama.cpp allocates, in bytes (rounded up).

    ``n_ctx_total * sum over layers of head_count_kv(l) * (key_length + value_length)
    * bytes(kv_type)`` with ``n_ctx_total = min(num_ctx, context_length) * num_parallel``
    and bytes f16 = 2, q8_0 = 34/32, q4_0 = 18/32 (ggml block sizes).  Ignores
    sliding-window layers (which need less) and llama.cpp's context padding.

    Example::

        kv_cache_bytes(info, num_ctx=8192, num_parallel=2, kv_type="q8_0")
    """
    try:
        num, den = KV_TYPE_BYTES[kv_type.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown KV cache type {kv_type!r} (one of {', '.join(KV_TYPE_BYTES)})") from None
    elements = _ctx_total(info, num_ctx, num_parallel) * sum(info.head_count_kv) * (info.key_length + info.value_length)
    return -(-elements * num // den)


def ollama_estimate(info: ModelInfo, num_ctx: int, num_parallel: int) -> int:
    """Ollama's own scheduler prediction (llm.PredictServerVRAM, llama_server.go), in bytes.

    ``weights + 2 * block_count * HeadCountKVMin * (embedding_length / HeadCountMax)
    * numCtx * 2`` with ``numCtx = min(num_ctx, n_ctx_train) * num_parallel``.  It
    always assumes f16 and ignores key/value_length; the scheduler compares it with
    80% of a GPU's free memory to decide single-GPU placement.

    Example::

        ollama_estimate(info, num_ctx=8192, num_parallel=1)
    """
    # HeadCountKVMin defaults to 1 when the file has no head_count_kv (fs/ggml), and
    # PredictServerVRAM: "if kvHeads == 0 { kvHeads = 1 }".
    kv_heads = (min(info.head_count_kv) if info.kv_heads_in_file and info.head_count_kv else 1) or 1
    head_dim = info.embedding_length // info.head_count if info.head_count > 0 else 0
    return info.weights_bytes + 2 * info.block_count * kv_heads * head_dim * _ctx_total(info, num_ctx, num_parallel) * 2
