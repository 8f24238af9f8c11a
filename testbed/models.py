"""Synthetic test models and a static registry mirror for the testbed.

``publish_models(mirror_root)`` writes a Docker-registry-v2 layout that a
plain static file server can serve in place of registry.ollama.ai::

    {mirror_root}/v2/{namespace}/{model}/manifests/{tag}
    {mirror_root}/v2/{namespace}/{model}/blobs/sha256:{hex}

Each model is a real GGUF v3 file (header + llama-style metadata, zero
tensors) padded with deterministic pseudo-random bytes to its target size, so
digests are identical on every run.  The weights are meaningless: only the
ollama-deploy test double (which never runs a model) consumes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from pathlib import Path

MIB = 1024 * 1024

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_MODEL = "application/vnd.ollama.image.model"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_LICENSE = "application/vnd.ollama.image.license"

# GGUF value types
_U32, _F32, _STR, _ARR = 4, 6, 8, 9
GGUF_ALIGNMENT = 32
FILE_TYPE_Q4_K_M = 15

LLAMA3_TEMPLATE = (
    "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
LLAMA3_PARAMS = {"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]}
LICENSE = (
    "ollama-deploy testbed synthetic model. The weights are deterministic pseudo-random bytes\n"
    "generated for testing; they encode no model and carry no third-party rights.\n"
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    namespace: str
    model: str
    tag: str
    target_size: int
    display_name: str
    model_type: str  # config "model_type" (shown as parameter_size)
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    feed_forward_length: int
    context_length: int = 131072
    file_type: str = "Q4_K_M"

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.model}:{self.tag}"


CATALOG = [
    ModelSpec("testbed", "tiny", "latest", 2 * MIB, "Testbed Tiny (1B-shaped)", "1.2B",
              block_count=16, embedding_length=2048, head_count=32, head_count_kv=8, feed_forward_length=8192),
    ModelSpec("testbed", "small", "latest", 6 * MIB, "Testbed Small (3B-shaped)", "3.2B",
              block_count=28, embedding_length=3072, head_count=24, head_count_kv=8, feed_forward_length=8192),
]


# -- GGUF writer -------------------------------------------------------------------


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, value) -> bytes:
    """Encode one key/value: str -> string, int -> uint32, float -> float32, list[str] -> array."""
    out = _str(key)
    if isinstance(value, str):
        return out + struct.pack("<I", _STR) + _str(value)
    if isinstance(value, bool):
        raise TypeError("bool metadata is not used here")
    if isinstance(value, int):
        return out + struct.pack("<II", _U32, value)
    if isinstance(value, float):
        return out + struct.pack("<If", _F32, value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return out + struct.pack("<IIQ", _ARR, _STR, len(value)) + b"".join(_str(v) for v in value)
    raise TypeError(f"unsupported GGUF value for {key}: {value!r}")


def gguf_bytes(metadata: dict, target_size: int = 0, seed: bytes = b"") -> bytes:
    """A GGUF v3 file: header, metadata, zero tensors, then deterministic padding.

    The padding (SHAKE-256 of ``seed``) stands in for tensor data so the blob
    has a realistic size; readers stop after the metadata.
    """
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata))
    body += b"".join(_kv(k, v) for k, v in metadata.items())
    body += b"\0" * (-len(body) % GGUF_ALIGNMENT)
    if target_size > len(body):
        body += hashlib.shake_256(b"ollama-deploy-testbed:" + seed).digest(target_size - len(body))
    return body


def gguf_metadata(spec: ModelSpec) -> dict:
    head_dim = spec.embedding_length // spec.head_count
    return {
        "general.architecture": "llama",
        "general.type": "model",
        "general.name": spec.display_name,
        "general.size_label": spec.model_type.split(".")[0] + "B",
        "general.file_type": FILE_TYPE_Q4_K_M,
        "general.quantization_version": 2,
        "llama.block_count": spec.block_count,
        "llama.context_length": spec.context_length,
        "llama.embedding_length": spec.embedding_length,
        "llama.feed_forward_length": spec.feed_forward_length,
        "llama.attention.head_count": spec.head_count,
        "llama.attention.head_count_kv": spec.head_count_kv,
        "llama.attention.key_length": head_dim,
        "llama.attention.value_length": head_dim,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.rope.dimension_count": head_dim,
        "llama.rope.freq_base": 500000.0,
        "llama.vocab_size": 8,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "llama-bpe",
        # > 5 elements: /api/show without verbose replaces it with []
        "tokenizer.ggml.tokens": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                  "<|end_header_id|>", "<|eot_id|>", "Test", "double", "."],
    }


# -- registry layout ------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def model_blobs(spec: ModelSpec) -> tuple[bytes, list[tuple[dict, bytes]]]:
    """Return (manifest bytes, [(descriptor, blob bytes), ...]) for one catalog model."""
    model = gguf_bytes(gguf_metadata(spec), spec.target_size, seed=spec.name.encode())
    template = LLAMA3_TEMPLATE.encode()
    params = (json.dumps(LLAMA3_PARAMS, separators=(",", ":")) + "\n").encode()
    license_ = LICENSE.encode()
    layers = [(_layer(MT_MODEL, model), model), (_layer(MT_TEMPLATE, template), template),
              (_layer(MT_LICENSE, license_), license_), (_layer(MT_PARAMS, params), params)]
    config = {
        "model_format": "gguf",
        "model_family": "llama",
        "model_families": ["llama"],
        "model_type": spec.model_type,
        "file_type": spec.file_type,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d, _ in layers]},
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_desc = _layer(MT_CONFIG, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": [d for d, _ in layers],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    return manifest_bytes, [(config_desc, config_bytes)] + layers


def publish_models(mirror_root) -> list[dict]:
    """Write every CATALOG model under ``mirror_root``; returns one dict per model:
    ``{"name": "testbed/tiny:latest", "digest": "sha256:<manifest hex>", "total_bytes": N}``
    where total_bytes is the sum of all blob sizes (what /api/tags reports as size).
    """
    return publish_catalog(mirror_root, CATALOG, model_blobs)


def publish_catalog(mirror_root, specs, blobs_of) -> list[dict]:
    """Write each spec's manifest and blobs (``blobs_of(spec) -> (manifest, [(descriptor, bytes)])``)
    under ``mirror_root``/v2/<namespace>/<model>/; returns publish_models's rows."""
    root = Path(mirror_root)
    out = []
    for spec in specs:
        repo = root / "v2" / spec.namespace / spec.model
        (repo / "manifests").mkdir(parents=True, exist_ok=True)
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        manifest, blobs = blobs_of(spec)
        for desc, data in blobs:
            path = repo / "blobs" / desc["digest"]
            if not path.exists() or path.stat().st_size != len(data):
                tmp = path.with_name(path.name + ".tmp")  # a reader never sees half a blob
                tmp.write_bytes(data)
                tmp.replace(path)
        (repo / "manifests" / spec.tag).write_bytes(manifest)
        out.append({
            "name": spec.name,
            "digest": _digest(manifest),
            "total_bytes": sum(len(data) for _, data in blobs),
        })
    return out


if __name__ == "__main__":
    import sys

    for row in publish_models(sys.argv[1] if len(sys.argv) > 1 else "mirror"):
        print(json.dumps(row))
