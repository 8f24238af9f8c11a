"""What the memory budget needs to know of a model: its shape from the GGUF header, and the bytes its
KV cache and Ollama's own estimate take for a context and a number of parallel slots.

Example:
    info = model_info_from_kv("qwen2.5:0.5b", kv, weights_bytes=397_807_936)
    kv_cache_bytes(info, num_ctx=8192, num_parallel=4, kv_type="q8_0")
"""
from __future__ import annotations

from dataclasses import dataclass

from ollama_deploy.gocompat import gguf

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
