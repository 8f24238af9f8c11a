"""ollama_deploy/control/modelinfo.py against a real static registry on 127.0.0.1 (no other traffic; fixtures in
conftest.py, the server in registry.py)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from ollama_deploy.control import modelinfo
from ollama_deploy.control.modelinfo import fetch_model_info, registry_base
from ollama_deploy.gocompat import gguf
from ollama_deploy.gocompat.names import parse_model_name
from ollama_deploy.lib.modelshape import ModelInfo, ModelInfoError, kv_cache_bytes, model_info_from_kv, ollama_estimate
from testbed.models import CATALOG, MIB, MT_MODEL, gguf_bytes, gguf_metadata
from tests.unit.registry import BIG_TOKENS, Registry, publish_blob


def _manifest(root: Path, ns: str, model: str, tag: str) -> dict:
    return json.loads((root / "v2" / ns / model / "manifests" / tag).read_bytes())


# -- fetch_model_info ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_catalog_models_match_their_declared_metadata(registry, root, spec):
    layer = next(x for x in _manifest(root, spec.namespace, spec.model, spec.tag)["layers"]
                 if x["mediaType"] == MT_MODEL)
    meta = gguf_metadata(spec)
    info = fetch_model_info(f"{spec.namespace}/{spec.model}", registry=registry.url)
    assert info == ModelInfo(
        name=f"{spec.namespace}/{spec.model}",
        architecture=meta["general.architecture"],
        weights_bytes=layer["size"],
        block_count=spec.block_count,
        head_count=spec.head_count,
        head_count_kv=(spec.head_count_kv,) * spec.block_count,
        embedding_length=spec.embedding_length,
        key_length=meta["llama.attention.key_length"],
        value_length=meta["llama.attention.value_length"],
        context_length=spec.context_length,
    )
    assert info.weights_bytes == spec.target_size
    # One small range was enough; the model was not downloaded.
    assert registry.blob_requests() == [(f"/v2/{spec.namespace}/{spec.model}/blobs/{layer['digest']}",
                                         f"bytes=0-{2 * MIB - 1}")]
    assert sum(n for p, n in registry.httpd.sent if "/blobs/" in p) <= 2 * MIB


def test_header_larger_than_first_range_is_fetched_in_growing_ranges(registry):
    info = fetch_model_info("testbed/bigheader:latest", registry=registry.url)
    spec = CATALOG[0]
    assert (info.block_count, info.head_count, info.head_count_kv[0], info.context_length) == \
        (spec.block_count, spec.head_count, spec.head_count_kv, spec.context_length)
    assert info.weights_bytes == 8 * MIB
    ranges = [r for _, r in registry.blob_requests()]
    # 2 MiB first, then only the missing bytes up to the next doubling (8 MiB covers ~5.3 MiB).
    assert ranges[0] == f"bytes=0-{2 * MIB - 1}"
    assert len(ranges) >= 2
    assert ranges[-1].endswith(f"-{8 * MIB - 1}")
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_blob_redirect_is_followed_with_the_range(root):
    modelinfo.clear_cache()
    r = Registry(root, redirect_blobs=True)
    try:
        info = fetch_model_info("testbed/tiny", registry=r.url)
        assert info.block_count == CATALOG[0].block_count
        cdn = [(p, rng) for p, rng in r.httpd.log if p.startswith("/cdn/")]
        assert len(cdn) == 1 and cdn[0][1] == f"bytes=0-{2 * MIB - 1}"
    finally:
        r.close()
        modelinfo.clear_cache()


def test_server_ignoring_range_works_and_is_not_read_to_the_end(plain_registry):
    info = fetch_model_info("testbed/huge", registry=plain_registry.url)
    assert info.block_count == CATALOG[1].block_count and info.weights_bytes == 256 * MIB
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("/blobs/" in p for p, _ in plain_registry.httpd.sent):
        time.sleep(0.05)
    sent = [n for p, n in plain_registry.httpd.sent if "/blobs/" in p]
    assert len(sent) == 1
    assert sent[0] < 96 * MIB  # the client closed the connection early (kernel buffers hold a few MiB)


def test_server_ignoring_range_with_big_header(plain_registry):
    info = fetch_model_info("testbed/bigheader", registry=plain_registry.url)
    assert info.block_count == CATALOG[0].block_count
    assert len(plain_registry.blob_requests()) == 1  # kept reading the one 200 stream


def test_unknown_model_names_model_and_404(registry):
    with pytest.raises(ModelInfoError) as e:
        fetch_model_info("testbed/nosuch:7b", registry=registry.url)
    msg = str(e.value)
    assert "testbed/nosuch:7b" in msg and "404" in msg
    assert f"{registry.url}/v2/testbed/nosuch/manifests/7b" in msg


def test_missing_blob_is_an_error(registry, root, tmp_path):
    m = _manifest(root, "testbed", "tiny", "latest")
    layer = next(x for x in m["layers"] if x["mediaType"] == MT_MODEL)
    d = root / "v2" / "testbed" / "gone" / "manifests"
    d.mkdir(parents=True, exist_ok=True)
    (d / "latest").write_text(json.dumps(m))  # blobs live under testbed/tiny, not testbed/gone
    with pytest.raises(ModelInfoError, match=r"testbed/gone.*blobs/" + layer["digest"] + ".*HTTP 404"):
        fetch_model_info("testbed/gone", registry=registry.url)


def test_not_gguf_is_an_error(registry, root):
    junk = root / "junk.bin"
    junk.write_bytes(b"NOTGGUF" + bytes(100))
    publish_blob(root, "testbed", "junk", "latest", junk)
    with pytest.raises(ModelInfoError, match="not a GGUF file"):
        fetch_model_info("testbed/junk", registry=registry.url)


def test_truncated_header_is_an_error(registry, root):
    whole = gguf_bytes({**gguf_metadata(CATALOG[0]), "tokenizer.ggml.tokens": BIG_TOKENS[:1000]})
    cut = root / "cut.gguf"
    cut.write_bytes(whole[: len(whole) // 2])
    publish_blob(root, "testbed", "cut", "latest", cut)
    with pytest.raises(ModelInfoError, match="inside the GGUF header"):
        fetch_model_info("testbed/cut", registry=registry.url)


def test_results_are_cached_per_name_and_registry(registry):
    a = fetch_model_info("testbed/tiny", registry=registry.url)
    n = len(registry.httpd.log)
    assert fetch_model_info("testbed/tiny", registry=registry.url) is a
    assert len(registry.httpd.log) == n


def test_explicit_host_in_the_name_is_used(registry):
    host = registry.url.removeprefix("http://")
    # The name's own scheme ...
    info = fetch_model_info(f"http://{host}/testbed/tiny:latest")
    assert info.block_count == CATALOG[0].block_count
    # ... or the registry's when the registry is that host.
    assert fetch_model_info(f"{host}/testbed/small", registry=registry.url).block_count == CATALOG[1].block_count
    assert registry_base(f"{host}/testbed/small") == f"https://{host}"
    assert registry_base("llama3.2") == "https://registry.ollama.ai"
    assert registry_base("registry.ollama.ai/library/llama3.2", "http://mirror:5000/") == "http://mirror:5000"


# -- memory ------------------------------------------------------------------------------------------


@pytest.fixture
def tiny(registry):
    return fetch_model_info("testbed/tiny", registry=registry.url)


def test_kv_cache_bytes_from_declared_metadata(tiny):
    spec = CATALOG[0]
    head_dim = spec.embedding_length // spec.head_count
    expected = 4096 * 2 * spec.block_count * spec.head_count_kv * (2 * head_dim) * 2
    assert kv_cache_bytes(tiny, 4096, 2) == expected
    # num_ctx is clamped to n_ctx_train before the parallel slots multiply it
    big = spec.context_length * 4
    assert kv_cache_bytes(tiny, big, 1) == kv_cache_bytes(tiny, spec.context_length, 1)
    assert kv_cache_bytes(tiny, big, 3) == 3 * kv_cache_bytes(tiny, spec.context_length, 1)


def test_kv_cache_quantized_ratios(tiny):
    f16 = kv_cache_bytes(tiny, 8192, 2, "f16")
    assert kv_cache_bytes(tiny, 8192, 2, "q8_0") * 64 == f16 * 34
    assert kv_cache_bytes(tiny, 8192, 2, "q4_0") * 64 == f16 * 18
    assert kv_cache_bytes(tiny, 8192, 2, "q5_1") * 64 == f16 * 24
    assert kv_cache_bytes(tiny, 8192, 2, "bf16") == f16 and kv_cache_bytes(tiny, 8192, 2, "f32") == 2 * f16
    with pytest.raises(ValueError, match="unknown KV cache type 'q6_k'"):
        kv_cache_bytes(tiny, 8192, 1, "q6_k")  # not a type llama.cpp's cache takes


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
@pytest.mark.parametrize("num_ctx,num_parallel", [(2048, 1), (8192, 4), (10**6, 2)])
def test_ollama_estimate_matches_the_scheduler_formula(registry, root, spec, num_ctx, num_parallel):
    info = fetch_model_info(spec.name, registry=registry.url)
    weights = next(x for x in _manifest(root, spec.namespace, spec.model, spec.tag)["layers"]
                   if x["mediaType"] == MT_MODEL)["size"]
    # llama_server.go PredictServerVRAM; numCtx = min(num_ctx, n_ctx_train) * num_parallel (sched.go)
    ctx = min(num_ctx, spec.context_length) * num_parallel
    expected = weights + 2 * spec.block_count * spec.head_count_kv * (spec.embedding_length // spec.head_count) * ctx * 2
    assert ollama_estimate(info, num_ctx, num_parallel) == expected


def test_per_layer_head_count_kv():
    kv = {"general.architecture": "gemma", "gemma.block_count": 4, "gemma.context_length": 8192,
          "gemma.embedding_length": 2048, "gemma.attention.head_count": 8,
          "gemma.attention.head_count_kv": [4, 0, 2, 4], "gemma.attention.key_length": 256}
    info = model_info_from_kv("x", kv, 1000)
    assert info.head_count_kv == (4, 0, 2, 4)
    assert (info.key_length, info.value_length) == (256, 2048 // 8)
    assert kv_cache_bytes(info, 100, 1) == 100 * 10 * (256 + 256) * 2
    # Ollama: HeadCountKVMin is 0 here, and PredictServerVRAM then uses 1
    assert ollama_estimate(info, 100, 1) == 1000 + 2 * 4 * 1 * (2048 // 8) * 100 * 2


def test_missing_head_count_kv_is_n_head_for_llama_cpp_and_1_for_ollamas_estimate():
    kv = {"general.architecture": "llama", "llama.block_count": 2, "llama.context_length": 4096,
          "llama.embedding_length": 64, "llama.attention.head_count": 4}
    info = model_info_from_kv("m", kv, 1000)
    assert info.head_count_kv == (4, 4) and not info.kv_heads_in_file
    assert kv_cache_bytes(info, 100, 1) == 100 * 2 * 4 * (16 + 16) * 2  # llama.cpp: n_head_kv = n_head
    assert ollama_estimate(info, 100, 1) == 1000 + 2 * 2 * 1 * 16 * 100 * 2  # HeadCountKVMin default 1
    given = model_info_from_kv("m", {**kv, "llama.attention.head_count_kv": 4}, 1000)
    assert ollama_estimate(given, 100, 1) == 1000 + 2 * 2 * 4 * 16 * 100 * 2


def test_an_embedding_model_has_one_slot_whatever_num_parallel():
    kv = {"general.architecture": "bert", "bert.block_count": 2, "bert.context_length": 512,
          "bert.embedding_length": 64, "bert.attention.head_count": 2, "bert.pooling_type": 1}
    info = model_info_from_kv("e", kv, 1000)
    assert info.embedding and info.slots(4) == 1
    kv.pop("bert.pooling_type")
    assert model_info_from_kv("e", kv, 1000).slots(4) == 4
    qwen35 = {k.replace("bert", "qwen35"): v for k, v in kv.items()} | {"general.architecture": "qwen35"}
    assert model_info_from_kv("q", qwen35, 1).slots(4) == 1  # a family Ollama keeps to one slot


def test_missing_required_key_names_it():
    with pytest.raises(ModelInfoError, match="'m'.*llama.block_count"):
        model_info_from_kv("m", {"general.architecture": "llama"}, 1)


# -- gguf prefix parser ------------------------------------------------------------------------------


def test_parse_kv_prefix_asks_for_more_bytes():
    meta = {**gguf_metadata(CATALOG[0]), "tokenizer.ggml.tokens": BIG_TOKENS[:100]}
    data = gguf_bytes(meta)
    assert gguf.parse_kv_prefix(data, max_array=-1)["tokenizer.ggml.tokens"] == BIG_TOKENS[:100]
    with pytest.raises(gguf.NeedMoreBytes) as e:
        gguf.parse_kv_prefix(data[:10])
    assert e.value.needed == gguf.HEADER_SIZE
    for cut in (30, 200, len(data) // 2, len(data) - 40):
        with pytest.raises(gguf.NeedMoreBytes) as e:
            gguf.parse_kv_prefix(data[:cut])
        assert cut < e.value.needed <= len(data)
        assert isinstance(e.value, gguf.GGUFError)
    with pytest.raises(gguf.GGUFError, match="magic"):
        gguf.parse_kv_prefix(b"GGML" + data[4:])


def test_parse_kv_prefix_matches_read_kv(tmp_path):
    data = gguf_bytes(gguf_metadata(CATALOG[1]), 4096)
    (tmp_path / "m.gguf").write_bytes(data)
    whole = gguf.read_kv(str(tmp_path / "m.gguf"))
    assert whole.pop("general.parameter_count") == 0
    assert gguf.parse_kv_prefix(data) == whole
    # arrays over max_array come back as [] from both readers (Ollama's maxArraySize)
    short = gguf.read_kv(str(tmp_path / "m.gguf"), max_array=5)
    assert short["tokenizer.ggml.tokens"] == [] == gguf.parse_kv_prefix(data, max_array=5)["tokenizer.ggml.tokens"]


def test_read_kv_truncated_file_is_gguf_error(tmp_path):
    data = gguf_bytes({**gguf_metadata(CATALOG[0]), "tokenizer.ggml.tokens": BIG_TOKENS[:2000]})
    (tmp_path / "t.gguf").write_bytes(data[: len(data) - 100])
    for max_array in (1024, -1):  # skipped and decoded arrays both notice the end
        with pytest.raises(gguf.GGUFError, match="unexpected EOF"):
            gguf.read_kv(str(tmp_path / "t.gguf"), max_array)


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,parts", [
    ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest")),
    ("qwen2.5-coder:7b", ("registry.ollama.ai", "library", "qwen2.5-coder", "7b")),
    ("testbed/tiny", ("registry.ollama.ai", "testbed", "tiny", "latest")),
    ("host:5000/ns/m:t", ("host:5000", "ns", "m", "t")),
    ("https://example.com/ns/m", ("example.com", "ns", "m", "latest")),
    ("registry.ollama.ai/library/Mistral:7B-instruct_q4.K", ("registry.ollama.ai", "library", "Mistral",
                                                             "7B-instruct_q4.K")),
    ("  llama3.2:1b\n", ("registry.ollama.ai", "library", "llama3.2", "1b")),
])
def test_parse_model_name_accepts(name, parts):
    assert parse_model_name(name) == parts


@pytest.mark.parametrize("name,reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("llama3.2:", "empty tag"),
    (":7b", "empty model"),
    ("ns/", "empty model"),
    ("/m", "empty namespace"),
    ("h//m", "empty namespace"),
    ("a/b/c/d", "too many '/'-separated parts"),
    ("bad name", "invalid character ' '"),
    ("m:t@sha256-abc", "invalid character '@'"),
    ("my.org/m", "namespace 'my.org' may not contain '.'"),
    ("-m", "must start with a letter, digit or '_'"),
    ("m:.t", "must start with a letter, digit or '_'"),
    ("gpt-oss:20b:cloud", "model 'gpt-oss:20b' may not contain ':'"),
    ("x" * 81, "longer than 80"),
    ("ftp://h/ns/m", "scheme 'ftp'"),
])
def test_parse_model_name_rejects_with_reason(name, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_model_name(name)


def test_metadata_is_kept_by_manifest_digest_and_a_known_digest_reads_nothing(registry, root, tmp_path):
    from ollama_deploy.control import modelinfo

    name = "testbed/tiny"
    first = fetch_model_info(name, registry=registry.url)
    (cached,) = list(modelinfo.DISK_CACHE.glob("*.json"))
    digest = "sha256:" + cached.stem
    modelinfo.clear_cache()
    before = len(registry.httpd.log)
    assert fetch_model_info(name, registry=registry.url, digest=digest) == first
    assert len(registry.httpd.log) == before  # the host's digest is known: not one request
    modelinfo.clear_cache()
    assert fetch_model_info(name, registry=registry.url) == first
    assert [p for p, _ in registry.httpd.log[before:]] == ["/v2/testbed/tiny/manifests/latest"]  # no header
