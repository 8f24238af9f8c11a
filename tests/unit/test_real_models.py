"""testbed/real_models.py: the tiny real GGUFs read back (own reader and gguf's), have the stated
shapes, and are byte-identical across generations."""
from __future__ import annotations

import json

import pytest

from ollama_deploy.gocompat import gguf
from testbed.models import MT_MODEL, MT_PARAMS, MT_TEMPLATE
from testbed.real_models import REAL_CATALOG, gguf_model_bytes, publish_real_models
from testbed.real_models import (
    gguf as gguf_pkg,  # the PyPI package (ollama_deploy/gocompat/gguf.py may shadow the name)
)

SPECS = {s.model: s for s in REAL_CATALOG}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    return root, {row["name"]: row for row in publish_real_models(root)}


def _model_blob(root, model):
    repo = root / "v2" / "testbed" / model
    manifest = json.loads((repo / "manifests" / "latest").read_bytes())
    layer = next(x for x in manifest["layers"] if x["mediaType"] == MT_MODEL)
    return manifest, repo / "blobs" / layer["digest"]


@pytest.mark.parametrize("model,head_size", [("real-tiny", 32), ("real-tiny-hd16", 16)])
def test_own_reader_sees_llama_metadata(published, model, head_size):
    root, _ = published
    _, path = _model_blob(root, model)
    kv = gguf.read_kv(str(path), -1)
    assert kv["general.architecture"] == "llama"
    assert kv["llama.block_count"] == 2 and kv["llama.embedding_length"] == 64
    assert kv["llama.feed_forward_length"] == 128 and kv["llama.context_length"] == 4096
    assert kv["llama.attention.head_count_kv"] == 2
    assert kv["llama.embedding_length"] // kv["llama.attention.head_count"] == head_size
    assert kv["tokenizer.ggml.model"] == "llama"
    toks = kv["tokenizer.ggml.tokens"]
    assert toks[:3] == ["<unk>", "<s>", "</s>"] and "<0x00>" in toks and "<0xFF>" in toks and "▁the" in toks
    assert kv["tokenizer.ggml.token_type"][toks.index("<0x41>")] == 6  # byte
    assert len(kv["tokenizer.ggml.scores"]) == len(toks)
    assert toks[kv["tokenizer.ggml.bos_token_id"]] == "<s>" and toks[kv["tokenizer.ggml.eos_token_id"]] == "</s>"
    assert "<|im_start|>" in kv["tokenizer.chat_template"]
    assert kv["general.parameter_count"] > 100_000
    assert 200_000 < path.stat().st_size < 300_000


@pytest.mark.parametrize("model", list(SPECS))
def test_gguf_reader_sees_tensors_in_ggml_order(published, model):
    root, _ = published
    _, path = _model_blob(root, model)
    r = gguf_pkg.GGUFReader(str(path))
    spec = SPECS[model]
    n_vocab = len(r.fields["tokenizer.ggml.tokens"].data)
    shapes = {t.name: (t.tensor_type.name, [int(x) for x in t.shape]) for t in r.tensors}
    # GGUFReader reports ggml's ne order: ne[0] is the input (row length) dimension.
    assert shapes["token_embd.weight"] == ("F16", [64, n_vocab])
    assert shapes["output.weight"] == ("F16", [64, n_vocab])
    assert shapes["output_norm.weight"] == ("F32", [64])
    kv_dim = spec.head_count_kv * spec.head_size
    for i in range(2):
        assert shapes[f"blk.{i}.attn_q.weight"] == ("F16", [64, 64])
        assert shapes[f"blk.{i}.attn_k.weight"] == ("F16", [64, kv_dim])
        assert shapes[f"blk.{i}.attn_v.weight"] == ("F16", [64, kv_dim])
        assert shapes[f"blk.{i}.ffn_gate.weight"] == ("F16", [64, 128])
        assert shapes[f"blk.{i}.ffn_down.weight"] == ("F16", [128, 64])
    assert len(shapes) == 3 + 2 * 9
    head_count = int(r.fields["llama.attention.head_count"].parts[-1][0])
    assert 64 // head_count == spec.head_size


def test_bytes_identical_across_generations(tmp_path, published):
    for spec in REAL_CATALOG:
        assert gguf_model_bytes(spec) == gguf_model_bytes(spec)
    root, rows = published
    again = {row["name"]: row for row in publish_real_models(tmp_path)}
    assert again == rows


def test_manifest_layers(published):
    root, rows = published
    assert set(rows) == {f"testbed/{m}:latest" for m in ("real-tiny", "real-tiny-hd16", "real-tiny-think",
                                                         "real-tiny-embed")}
    manifest, _ = _model_blob(root, "real-tiny")
    kinds = [x["mediaType"] for x in manifest["layers"]]
    assert kinds == [MT_MODEL, MT_TEMPLATE, MT_PARAMS]
    blobs = root / "v2" / "testbed" / "real-tiny" / "blobs"
    template = (blobs / manifest["layers"][1]["digest"]).read_text()
    assert "{{ .Prompt }}" in template and "{{ .System }}" in template and "{{ .Response }}" in template
    assert json.loads((blobs / manifest["layers"][2]["digest"]).read_bytes())["stop"] == ["<|im_start|>", "<|im_end|>"]
    total = sum(x["size"] for x in manifest["layers"]) + manifest["config"]["size"]
    assert rows["testbed/real-tiny:latest"]["total_bytes"] == total


def test_only_the_embedding_model_has_a_pooling_type_and_only_the_thinking_one_a_thinking_template(published):
    root, _ = published
    for spec in REAL_CATALOG:
        manifest, path = _model_blob(root, spec.model)
        assert gguf.is_embedding(gguf.read_kv(str(path))) == (spec.model == "real-tiny-embed")
        template = (root / "v2" / "testbed" / spec.model / "blobs" / manifest["layers"][1]["digest"]).read_text()
        assert ("{{ .Thinking }}" in template and template.endswith("{{ if $.Think }}<think>{{ end }}{{ end }}{{- end }}")) \
            == (spec.model == "real-tiny-think")
