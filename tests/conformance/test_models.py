"""Models: /api/pull from the loopback mirror, the models dir, /api/tags, /api/show, /api/create
from a model with parameters, /api/delete. Each test runs against the double and real Ollama."""
from __future__ import annotations

import hashlib
import json
import re

import requests

from ollama_deploy.gocompat import gguf
from testbed.models import MT_CONFIG, MT_MANIFEST, MT_MODEL, MT_PARAMS, MT_TEMPLATE
from testbed.real_models import CHATML_TEMPLATE

PULL_STEPS = ["pulling manifest", "verifying sha256 digest", "writing manifest", "success"]
DETAILS = {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
           "parameter_size": "122K", "quantization_level": "F16"}
NANO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)"
TUNED_PARAMS = {"num_ctx": 1000000, "num_thread": 2, "temperature": 0.7, "stop": ["<|im_end|>", "END&"]}


def param_line(k: str, v: str) -> str:
    return f"{k:<30} {v}"


def blob_files(srv) -> set[str]:
    return {p.name for p in (srv.models / "blobs").iterdir()}


def test_pull_stream_and_models_dir_layout(ollama):
    srv = ollama.serve()
    name = ollama.model()
    raw, manifest = ollama.mirror.manifest("real-tiny")
    layers = manifest["layers"] + [manifest["config"]]  # PullModel fetches the config last
    sizes = {x["digest"]: x["size"] for x in layers}
    events = srv.pull(name)
    assert [e["status"] for e in events if "digest" not in e] == PULL_STEPS
    assert events[0] == {"status": "pulling manifest"}
    # per-layer progress comes only on the 60 ms ticks of blobDownload.Wait: there may be none
    for e in events:
        if "digest" in e:
            assert list(e) == ["status", "digest", "total", "completed"], e
            assert e["status"] == f"pulling {e['digest'][7:19]}" and e["total"] == sizes[e["digest"]]
            assert 0 <= e["completed"] <= e["total"]
    # manifests/<host>/<namespace>/<model>/<tag>, blobs/sha256-<hex>, nothing else
    mf = srv.models / "manifests" / ollama.mirror.host / "testbed" / "real-tiny" / "latest"
    assert mf.read_bytes() == raw
    assert [p.relative_to(srv.models).as_posix() for p in srv.models.rglob("*") if p.is_file()
            and "manifests" in p.parts] == [mf.relative_to(srv.models).as_posix()]
    assert blob_files(srv) == {"sha256-" + d[7:] for d in sizes}
    for d in sizes:
        assert hashlib.sha256((srv.models / "blobs" / ("sha256-" + d[7:])).read_bytes()).hexdigest() == d[7:]
    # pulling again: every layer (cache hit) reported once, complete, in manifest order
    again = srv.pull(name + ":latest")
    assert [e for e in again if "digest" in e] == [
        {"status": f"pulling {x['digest'][7:19]}", "digest": x["digest"], "total": x["size"], "completed": x["size"]}
        for x in layers]
    assert [e["status"] for e in again if "digest" not in e] == PULL_STEPS


def test_pull_unknown_model_streams_error(ollama):
    srv = ollama.serve()
    events = srv.stream("/api/pull", {"model": ollama.model("nope"), "insecure": True})
    assert events == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    assert not list((srv.models / "manifests").rglob("*"))


def test_tags_after_pull(ollama):
    srv = ollama.serve()
    name = ollama.model()
    srv.pull(name)
    pub = ollama.mirror.published["testbed/real-tiny:latest"]
    (m,) = srv.get("/api/tags").json()["models"]
    assert list(m) == ["name", "model", "modified_at", "size", "digest", "details", "capabilities"]
    assert m["name"] == m["model"] == f"{name}:latest"
    assert re.fullmatch(NANO_TIME, m["modified_at"]), m["modified_at"]
    assert (m["size"], m["digest"]) == (pub["total_bytes"], pub["digest"][7:])
    assert m["details"] == {**DETAILS, "context_length": 4096, "embedding_length": 64}
    assert m["capabilities"] == ["completion"]


def test_show_pulled_model(ollama):
    srv = ollama.serve()
    name = ollama.model()
    srv.pull(name)
    show = srv.post("/api/show", {"model": name}).json()
    assert list(show) == ["modelfile", "parameters", "template", "details", "model_info", "tensors",
                          "capabilities", "modified_at"]
    assert show["template"] == CHATML_TEMPLATE and show["capabilities"] == ["completion"]
    assert show["details"] == DETAILS
    assert sorted(show["parameters"].split("\n")) == sorted(
        [param_line("stop", '"<|im_end|>"'), param_line("stop", '"<|im_start|>"')])
    _, manifest = ollama.mirror.manifest("real-tiny")
    blob = srv.models / "blobs" / ("sha256-" + manifest["layers"][0]["digest"][7:])
    kv = gguf.read_kv(str(blob), -1)
    for k in ("general.name", "tokenizer.chat_template"):
        kv.pop(k)
    # without verbose, every non-empty array is null (decoded with maxArraySize 0)
    assert show["model_info"] == {k: (None if isinstance(v, list) and v else v) for k, v in kv.items()}
    verbose = srv.post("/api/show", {"model": name, "verbose": True}).json()
    assert verbose["model_info"] == kv and len(kv["tokenizer.ggml.tokens"]) == 308
    tensors = show["tensors"]
    assert len(tensors) == 21 and tensors[0] == {"name": "token_embd.weight", "type": "F16", "shape": [64, 308]}
    assert {"name": "output_norm.weight", "type": "F32", "shape": [64]} in tensors
    head = ['# Modelfile generated by "ollama show"', "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {name}:latest", "", f"FROM {blob}", f'TEMPLATE "{CHATML_TEMPLATE}"']
    text = show["modelfile"]
    assert text.startswith("\n".join(head) + "\n") and text.endswith("\n")
    tail = text[len("\n".join(head)) + 1:].splitlines()
    assert sorted(tail) == ["PARAMETER stop <|im_end|>", "PARAMETER stop <|im_start|>"]
    r = srv.post("/api/show", {"model": "nope"})
    assert (r.status_code, r.json()) == (404, {"error": "model 'nope:latest' not found"})


def test_create_from_model_with_parameters_then_delete(ollama):
    srv = ollama.serve()
    name = ollama.model()
    srv.pull(name)
    _, base = ollama.mirror.manifest("real-tiny")
    model_l, template_l, _ = base["layers"]
    # the params layer: json.Encoder of the Go map (sorted keys, <>& escaped, trailing newline)
    params = (json.dumps(TUNED_PARAMS, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
              .replace(">", "\\u003e").replace("&", "\\u0026") + "\n").encode()
    params_digest = "sha256:" + hashlib.sha256(params).hexdigest()
    events = srv.stream("/api/create", {"model": "real-tiny-tuned", "from": name, "parameters": TUNED_PARAMS})
    assert events == [{"status": f"using existing layer {model_l['digest']}"},
                      {"status": f"using existing layer {template_l['digest']}"},
                      {"status": f"creating new layer {params_digest}"},
                      {"status": "writing manifest"}, {"status": "success"}]
    mf_path = srv.models / "manifests" / "registry.ollama.ai" / "library" / "real-tiny-tuned" / "latest"
    mf = json.loads(mf_path.read_bytes())
    parent = f"{name}:latest"
    config = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"], "model_type": "122K",
              "file_type": "F16", "architecture": "amd64", "os": "linux"}
    config_bytes = (srv.models / "blobs" / ("sha256-" + mf["config"]["digest"][7:])).read_bytes()
    assert json.loads(config_bytes) == config
    assert mf == {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                  "config": {"mediaType": MT_CONFIG, "digest": mf["config"]["digest"], "size": len(config_bytes)},
                  "layers": [{**model_l, "from": parent}, {**template_l, "from": parent},
                             {"mediaType": MT_PARAMS, "digest": params_digest, "size": len(params)}]}
    assert (srv.models / "blobs" / ("sha256-" + params_digest[7:])).read_bytes() == params
    assert MT_MODEL == model_l["mediaType"] and MT_TEMPLATE == template_l["mediaType"]

    show = srv.post("/api/show", {"model": "real-tiny-tuned"}).json()
    # Go's %#v of float64 values: 1000000 -> 1e+06; map order is random, so compare as sets
    assert sorted(show["parameters"].split("\n")) == sorted([
        param_line("num_ctx", "1e+06"), param_line("num_thread", "2"), param_line("temperature", "0.7"),
        param_line("stop", '"<|im_end|>"'), param_line("stop", '"END&"')])
    assert sorted(x for x in show["modelfile"].splitlines() if x.startswith("PARAMETER")) == sorted([
        "PARAMETER num_ctx 1e+06", "PARAMETER num_thread 2", "PARAMETER temperature 0.7",
        "PARAMETER stop <|im_end|>", "PARAMETER stop END&"])
    assert show["details"] == {**DETAILS, "parent_model": parent}
    tags = {m["name"]: m for m in srv.get("/api/tags").json()["models"]}
    tuned = tags["real-tiny-tuned:latest"]
    assert tuned["details"]["parent_model"] == parent
    assert tuned["size"] == sum(x["size"] for x in mf["layers"]) + mf["config"]["size"]
    assert tuned["digest"] == hashlib.sha256(mf_path.read_bytes()).hexdigest()
    # the same create again reuses every layer
    again = srv.stream("/api/create", {"model": "real-tiny-tuned", "from": name, "parameters": TUNED_PARAMS})
    assert again[2] == {"status": f"using existing layer {params_digest}"}

    before = blob_files(srv)
    r = requests.delete(srv.url + "/api/delete", json={"model": "real-tiny-tuned"}, timeout=10)
    assert (r.status_code, r.text) == (200, "")
    assert not mf_path.exists() and not (srv.models / "manifests" / "registry.ollama.ai").exists()
    assert before - blob_files(srv) == {"sha256-" + params_digest[7:], "sha256-" + mf["config"]["digest"][7:]}
    assert [m["name"] for m in srv.get("/api/tags").json()["models"]] == [parent]
    r = requests.delete(srv.url + "/api/delete", json={"model": "real-tiny-tuned"}, timeout=10)
    assert (r.status_code, r.json()) == (404, {"error": "model 'real-tiny-tuned' not found"})
