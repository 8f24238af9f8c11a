"""End-to-end tests of the Ollama test double, run as a real subprocess on 127.0.0.1: pull, tags and
show, create and delete, and the CLI.

Each test module gets its own shared ``server`` (a module-scoped fixture in conftest.py).
"""

from __future__ import annotations

import hashlib
import re

import requests

from .conftest import VERSION, free_port

# --------------------------------------------------------------------------- pull


def test_pull_stream_sequence(server, mirror):
    events = server.stream("/api/pull", {"model": "testbed/small"})
    statuses = [e["status"] for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_events = [e for e in events if "digest" in e]
    digests = list(dict.fromkeys(e["digest"] for e in layer_events))
    assert len(digests) == 5  # model, template, license, params, config
    for d in digests:
        evs = [e for e in layer_events if e["digest"] == d]
        assert all(e["status"] == f"pulling {d[7:19]}" for e in evs)
        assert evs[-1]["completed"] == evs[-1]["total"] > 0
        assert [e["completed"] for e in evs] == sorted(e["completed"] for e in evs)
    # pulling again: each layer once, already complete
    again = server.stream("/api/pull", {"model": "testbed/small:latest"})
    layer_events = [e for e in again if "digest" in e]
    assert len(layer_events) == 5 and all(e["completed"] == e["total"] for e in layer_events)
    assert again[-1] == {"status": "success"}
    manifest = server.models / "manifests/registry.ollama.ai/testbed/small/latest"
    assert "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest() == mirror.published["testbed/small:latest"]["digest"]


def test_pull_unknown_model(server):
    events = server.stream("/api/pull", {"model": "testbed/nope"})
    assert events == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    r = server.post("/api/pull", {"model": "testbed/nope", "stream": False})
    assert r.status_code == 500 and r.json() == {"error": "pull model manifest: file does not exist"}


def test_pull_resumes_partial_download(start, mirror):
    o = start()
    digest, data = mirror.blob("testbed/tiny:latest", "application/vnd.ollama.image.model")
    blobs = o.models / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / f"sha256-{digest[7:]}-partial").write_bytes(data[:1_000_000])
    lic_digest, lic = mirror.blob("testbed/tiny:latest", "application/vnd.ollama.image.license")
    (blobs / f"sha256-{lic_digest[7:]}-partial").write_bytes(lic)  # complete, but never renamed
    mirror.httpd.seen.clear()
    events = o.stream("/api/pull", {"model": "testbed/tiny"})
    assert events[-1] == {"status": "success"}
    first = next(e for e in events if e.get("digest") == digest)
    assert first["completed"] == 1_000_000
    assert (f"/v2/testbed/tiny/blobs/{digest}", "bytes=1000000-") in mirror.httpd.seen
    assert (blobs / f"sha256-{digest[7:]}").read_bytes() == data
    assert not (blobs / f"sha256-{digest[7:]}-partial").exists()
    assert not [p for p, _ in mirror.httpd.seen if lic_digest in p]
    assert (blobs / f"sha256-{lic_digest[7:]}").read_bytes() == lic


# --------------------------------------------------------------------------- tags / show


def test_tags_and_show(server, tiny, mirror):
    models = {m["name"]: m for m in requests.get(server.url + "/api/tags").json()["models"]}
    m = models["testbed/tiny:latest"]
    pub = mirror.published["testbed/tiny:latest"]
    assert m["model"] == m["name"] and m["digest"] == pub["digest"][7:] and m["size"] == pub["total_bytes"]
    assert m["details"]["format"] == "gguf" and m["details"]["family"] == "llama"
    assert m["details"]["parameter_size"] == "1.2B" and m["details"]["quantization_level"] == "Q4_K_M"
    show = server.post("/api/show", {"model": "testbed/tiny"}).json()
    info = show["model_info"]
    assert "general.name" not in info
    assert info["general.architecture"] == "llama" and info["llama.block_count"] == 16
    assert info["llama.context_length"] == 131072 and info["llama.attention.head_count_kv"] == 8
    assert info["tokenizer.ggml.tokens"] is None  # without verbose every non-empty array is null
    verbose = server.post("/api/show", {"model": "testbed/tiny", "verbose": True}).json()
    assert len(verbose["model_info"]["tokenizer.ggml.tokens"]) == 8
    assert show["capabilities"] == ["completion"] and "{{ .Prompt }}" in show["template"]
    assert 'stop                           "<|eot_id|>"' in show["parameters"]
    r = server.post("/api/show", {"model": "nope"})
    assert r.status_code == 404 and r.json() == {"error": "model 'nope:latest' not found"}


# --------------------------------------------------------------------------- create / delete


def test_create_with_parameters_and_delete(server, tiny):
    events = server.stream("/api/create", {"model": "mytiny", "from": tiny, "system": "Be brief.",
                                           "parameters": {"num_ctx": 8192, "num_thread": 3}})
    statuses = [e["status"] for e in events]
    assert statuses[-2:] == ["writing manifest", "success"]
    assert sum(s.startswith("using existing layer sha256:") for s in statuses) >= 3
    assert any(s.startswith("creating new layer sha256:") for s in statuses)
    show = server.post("/api/show", {"model": "mytiny"}).json()
    assert "num_ctx                        8192" in show["parameters"]
    assert 'stop                           "<|eot_id|>"' in show["parameters"]  # inherited
    assert show["system"] == "Be brief."
    names = [m["name"] for m in requests.get(server.url + "/api/tags").json()["models"]]
    assert "mytiny:latest" in names
    r = server.post("/api/generate", {"model": "mytiny", "prompt": "hi", "stream": False, "keep_alive": 0})
    assert r.status_code == 200
    argv = server.lines("starting llama-server")[-1]
    assert " -c 8192 -np 1 " in argv and " -t 3 " in argv
    model_blob = next(line for line in show["modelfile"].splitlines() if line.startswith("FROM "))
    r = requests.delete(server.url + "/api/delete", json={"model": "mytiny"})
    assert r.status_code == 200
    assert "mytiny:latest" not in [m["name"] for m in requests.get(server.url + "/api/tags").json()["models"]]
    assert (server.models / "blobs" / model_blob.split("/blobs/")[1]).exists()  # base model blob kept
    r = requests.delete(server.url + "/api/delete", json={"model": "mytiny"})
    assert r.status_code == 404 and r.json() == {"error": "model 'mytiny' not found"}


# --------------------------------------------------------------------------- CLI


def test_cli(server, tiny):
    v = server.cli("--version")
    assert v.returncode == 0 and v.stdout == f"ollama version is {VERSION}\n"
    assert "note: this is the ollama-deploy test double, not Ollama" in v.stderr
    off = server.cli("-v", host=f"127.0.0.1:{free_port()}")
    assert off.stdout == ("Warning: could not connect to a running Ollama instance\n"
                          f"Warning: client version is {VERSION}\n")
    listing = server.cli("list")
    lines = listing.stdout.splitlines()
    assert re.match(r"^NAME\s+ID\s+SIZE\s+MODIFIED\s*$", lines[0])
    row = next(line for line in lines if line.startswith("testbed/tiny:latest"))
    digest = requests.get(server.url + "/api/tags").json()["models"]
    tiny_digest = next(m["digest"] for m in digest if m["name"] == "testbed/tiny:latest")
    assert f"    {tiny_digest[:12]}    2.1 MB    " in row
    pull = server.cli("pull", "testbed/tiny")
    assert pull.returncode == 0
    err = pull.stderr.splitlines()
    assert err[0] == "pulling manifest" and err[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert any(re.match(r"^pulling [0-9a-f]{12}: 100% ", line) for line in err)
    run = server.cli("run", "testbed/tiny", "hello", "cli")
    assert run.stdout.strip() == "Test double reply: you said hello cli."
    ps = server.cli("ps")
    assert "100% CPU" in ps.stdout and "4096" in ps.stdout
    bad = server.cli("rm", "nope")
    assert bad.returncode == 1 and bad.stderr.strip() == "Error: model 'nope' not found"


def test_cli_create_rejects_unknown_parameter(server, tiny, tmp_path):
    mf = tmp_path / "Modelfile"
    mf.write_text(f"FROM {tiny}\nPARAMETER num_threads 8\n")
    r = server.cli("create", "badtiny", "-f", str(mf))
    assert r.returncode == 1 and r.stderr.strip() == "Error: unknown parameter 'num_threads'"
    mf.write_text(f'FROM {tiny}\nPARAMETER num_thread 8\nSYSTEM """Terse."""\n')
    r = server.cli("create", "goodtiny", "-f", str(mf))
    assert r.returncode == 0 and r.stderr.splitlines()[-1] == "success"
    assert "num_thread                     8" in server.post("/api/show", {"model": "goodtiny"}).json()["parameters"]
