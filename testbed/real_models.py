"""Tiny *real* llama-architecture GGUF models that real Ollama / llama.cpp loads and runs.

``testbed.models`` publishes metadata-only GGUFs that only the test double can use. These are
complete models (F16 weights, a SentencePiece-style vocabulary, a chat template), random but
deterministic (fixed numpy seed) and steered to emit only word pieces, about 250 KB each, so real
Ollama 0.32.15 loads them on a CPU in a quarter second and generates (nonsense) text:

* ``testbed/real-tiny:latest``: 2 layers, embedding 64, 2 heads / 2 KV heads (head size 32, so a
  q8_0 or q4_0 KV cache, block size 32, fits), feed-forward 128, context_length 4096.
* ``testbed/real-tiny-hd16:latest``: the same with 4 heads (head size 16): a q8_0 KV cache fails
  to load (``K cache type q8_0 with block size 32 does not divide n_embd_head_k=16``).
* ``testbed/real-tiny-think:latest``: real-tiny's shape with a thinking template (deepseek-r1's
  pattern: ``<think>{{ .Thinking }}</think>`` in the messages loop, the prompt ending in ``<think>``),
  so Ollama lists the ``thinking`` capability, turns thinking on when a request omits ``think``, and
  streams every token in ``thinking`` (the model never writes ``</think>``): ``response`` stays empty.
* ``testbed/real-tiny-embed:latest``: real-tiny's shape with ``llama.pooling_type`` (mean): Ollama
  lists only ``embedding``, answers ``/api/generate`` with 400 and ``/api/embed`` with vectors.

They are published in the registry layout of ``testbed.models.publish_models`` (same helpers,
media types and manifest/config shapes). Needs the PyPI package ``gguf`` (which pulls numpy).

Example::

    from testbed.real_models import publish_real_models
    rows = publish_real_models("/srv/mirror")
    # [{"name": "testbed/real-tiny:latest", "digest": "sha256:…", "total_bytes": 253688}, …]
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from testbed.models import MT_CONFIG, MT_MANIFEST, MT_MODEL, MT_PARAMS, MT_TEMPLATE, _layer, publish_catalog


def _gguf_package():
    """The PyPI package ``gguf``. The project's own stdlib reader is also a top-level ``gguf.py``
    (tasks/, and the double's copy), and some tests put its directory first on sys.path, so skip
    such entries, and leave ``sys.modules["gguf"]`` as it was for the code that means that reader."""
    mod = sys.modules.get("gguf")
    if mod is not None and hasattr(mod, "GGUFWriter"):
        return mod
    saved_path, shadow = sys.path[:], sys.modules.pop("gguf", None)
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "gguf.py").is_file()]
    try:
        return importlib.import_module("gguf")
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("gguf", None)
        if shadow is not None:
            sys.modules["gguf"] = shadow


gguf = _gguf_package()
SEED = 20261203
# Ollama renders its Go template itself and sends llama-server the finished prompt.
CHATML_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
)
# llama.cpp wants a Jinja template in the GGUF (tokenizer.chat_template) for its own chat endpoints.
CHATML_JINJA = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# deepseek-r1's shape: Ollama infers the tags from the text around .Thinking inside the range over
# .Messages (thinking/template.go InferTags), and parses the reply as thinking when the rendered
# prompt ends with the opening tag (server/routes.go).
THINK_TEMPLATE = (
    "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}"
    "{{- if eq .Role \"system\" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n"
    "{{- else if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
    "{{- else if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{- if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>\n{{ end }}"
    "{{- if and $last (ne .Role \"assistant\") }}<|im_start|>assistant\n{{ if $.Think }}<think>{{ end }}{{ end }}"
    "{{- end }}"
)
CHATML_PARAMS = {"stop": ["<|im_start|>", "<|im_end|>"]}
WORDS = ["▁", "▁the", "▁a", "▁is", "▁of", "▁and", "▁to", "▁in", "▁it", "▁why", "▁sky", "▁blue",
         "▁hello", "▁world", "▁test", "▁model", "▁tiny", ".", ",", "?", "!"] + list("abcdefghijklmnopqrstuvwxyz")


@dataclasses.dataclass(frozen=True)
class RealSpec:
    model: str
    head_count: int
    head_count_kv: int = 2
    block_count: int = 2
    embedding_length: int = 64
    feed_forward_length: int = 128
    context_length: int = 4096
    namespace: str = "testbed"
    tag: str = "latest"
    template: str = CHATML_TEMPLATE
    pooling_type: int | None = None  # llama.cpp's enum (1 = mean): makes it an embedding model

    name = property(lambda self: f"{self.namespace}/{self.model}:{self.tag}")
    head_size = property(lambda self: self.embedding_length // self.head_count)


REAL_CATALOG = [RealSpec("real-tiny", head_count=2), RealSpec("real-tiny-hd16", head_count=4),
                RealSpec("real-tiny-think", head_count=2, template=THINK_TEMPLATE),
                RealSpec("real-tiny-embed", head_count=2, pooling_type=1)]
# Tens of MB (34 MB), so that bytes dominate a fleet benchmark (bench/site.py); not published by default.
BENCH_SPEC = RealSpec("real-bench", head_count=16, head_count_kv=16, block_count=4, embedding_length=512,
                      feed_forward_length=2048)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """(tokens, scores, types) of a SentencePiece ("llama") vocabulary with byte fallback."""
    T = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["<|im_start|>", "<|im_end|>"]
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL] + [T.BYTE] * 256 + [T.CONTROL, T.CONTROL]
    scores = [0.0] * len(tokens)
    # SPM merges the highest-scoring pieces first: longer words score higher than letters.
    for i, w in enumerate(WORDS):
        tokens.append(w)
        types.append(T.NORMAL)
        scores.append(-1.0 - i / 100 if len(w) > 1 else -10.0 - i / 100)
    return tokens, scores, [int(t) for t in types]


def tensors(spec: RealSpec) -> dict[str, np.ndarray]:
    """The weights, in file order; numpy shapes are ggml's ne reversed, (out, in) (the writer
    reverses them). Seeded, so the same arrays on every call."""
    rng = np.random.default_rng(SEED + spec.head_count)
    _, _, types = vocabulary()
    n_vocab, d, ff = len(types), spec.embedding_length, spec.feed_forward_length
    d_kv = spec.head_count_kv * spec.head_size

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float16)

    # Steer generation to ordinary word pieces. A random model also emits byte tokens, and a
    # stray byte (half a UTF-8 character) makes real Ollama 0.32.15 answer with an empty
    # not-done object or end the stream without its final frame. So every embedding carries a
    # large shared direction u (the small random blocks barely move it), and the output rows are
    # +u for word pieces, -u for bytes and control tokens: after the final RMS norm the word
    # logits are about +8 and all others about -8, with noise that still varies the words.
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    sign = np.where(np.array(types) == int(gguf.TokenType.NORMAL), 1.0, -1.0)
    ones = np.ones(d, dtype=np.float32)  # 1-D norms stay F32, as converters write MOSTLY_F16
    out = {"token_embd.weight": (10.0 * u + rng.standard_normal((n_vocab, d)) * 0.02).astype(np.float16),
           "output_norm.weight": ones,
           "output.weight": (sign[:, None] * u + rng.standard_normal((n_vocab, d)) * 0.1).astype(np.float16)}
    for i in range(spec.block_count):  # a dict display evaluates in order: same rng draws
        b = f"blk.{i}."
        out |= {b + "attn_norm.weight": ones, b + "attn_q.weight": w(d, d), b + "attn_k.weight": w(d_kv, d),
                b + "attn_v.weight": w(d_kv, d), b + "attn_output.weight": w(d, d), b + "ffn_norm.weight": ones,
                b + "ffn_gate.weight": w(ff, d), b + "ffn_up.weight": w(ff, d), b + "ffn_down.weight": w(d, ff)}
    return out


def parameter_count(spec: RealSpec) -> int:
    return sum(a.size for a in tensors(spec).values())


def gguf_model_bytes(spec: RealSpec) -> bytes:
    """The GGUF file of ``spec``: the same bytes on every call (seeded weights, fixed key order)."""
    tokens, scores, types = vocabulary()
    fd, tmp = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    try:
        wr = gguf.GGUFWriter(tmp, "llama")
        wr.add_name(f"Testbed {spec.model}")
        wr.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
        wr.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for add, value in ((wr.add_block_count, spec.block_count), (wr.add_context_length, spec.context_length),
                           (wr.add_embedding_length, spec.embedding_length),
                           (wr.add_feed_forward_length, spec.feed_forward_length),
                           (wr.add_head_count, spec.head_count), (wr.add_head_count_kv, spec.head_count_kv),
                           (wr.add_layer_norm_rms_eps, 1e-5), (wr.add_rope_dimension_count, spec.head_size),
                           (wr.add_rope_freq_base, 10000.0), (wr.add_vocab_size, len(tokens))):
            add(value)
        if spec.pooling_type is not None:
            wr.add_pooling_type(gguf.PoolingType(spec.pooling_type))
        wr.add_tokenizer_model("llama")
        wr.add_token_list(tokens)
        wr.add_token_scores(scores)
        wr.add_token_types(types)
        for add, value in ((wr.add_unk_token_id, 0), (wr.add_bos_token_id, 1), (wr.add_eos_token_id, 2),
                           (wr.add_add_bos_token, True), (wr.add_add_eos_token, False),
                           (wr.add_chat_template, CHATML_JINJA)):
            add(value)
        for name, array in tensors(spec).items():
            wr.add_tensor(name, array)
        wr.write_header_to_file()
        wr.write_kv_data_to_file()
        wr.write_tensors_to_file()
        wr.close()
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def model_blobs(spec: RealSpec) -> tuple[bytes, list[tuple[dict, bytes]]]:
    """Return (manifest bytes, [(descriptor, blob bytes), ...]), shaped like testbed.models'."""
    model = gguf_model_bytes(spec)
    template = spec.template.encode()
    params = (json.dumps(CHATML_PARAMS, separators=(",", ":")) + "\n").encode()
    layers = [(_layer(MT_MODEL, model), model), (_layer(MT_TEMPLATE, template), template),
              (_layer(MT_PARAMS, params), params)]
    config = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
              "model_type": f"{parameter_count(spec) / 1000:.0f}K",  # format.HumanNumber below 1M
              "file_type": "F16", "architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d, _ in layers]}}
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_desc = _layer(MT_CONFIG, config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config_desc,
                "layers": [d for d, _ in layers]}
    return json.dumps(manifest, separators=(",", ":")).encode(), [(config_desc, config_bytes)] + layers


def publish_real_models(mirror_root, specs: list[RealSpec] = REAL_CATALOG) -> list[dict]:
    """Write every model of `specs` (default: REAL_CATALOG) under ``mirror_root`` (v2/<ns>/<model>/{manifests,blobs});
    returns ``[{"name", "digest" (of the manifest), "total_bytes"}]`` like publish_models."""
    return publish_catalog(mirror_root, specs, model_blobs)
