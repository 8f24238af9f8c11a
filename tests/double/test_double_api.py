"""End-to-end tests of the Ollama test double, run as a real subprocess on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from .conftest import FAKE_SMI_FAILING, FAKE_SMI_P4000, VERSION, free_port, stage_release

ASMAP_KEYS = {
    "CUDA_VISIBLE_DEVICES", "GGML_VK_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "HIP_VISIBLE_DEVICES",
    "HSA_OVERRIDE_GFX_VERSION", "HTTPS_PROXY", "HTTP_PROXY", "LLAMA_ARG_FIT", "LLAMA_ARG_FIT_TARGET", "NO_PROXY",
    "OLLAMA_CONTEXT_LENGTH", "OLLAMA_DEBUG", "OLLAMA_DEBUG_LOG_REQUESTS", "OLLAMA_EDITOR", "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_GO_TEMPLATE", "OLLAMA_GPU_OVERHEAD", "OLLAMA_HOST", "OLLAMA_IGPU_ENABLE", "OLLAMA_KEEP_ALIVE",
    "OLLAMA_KV_CACHE_TYPE", "OLLAMA_LLM_LIBRARY", "OLLAMA_LOAD_TIMEOUT", "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_MAX_QUEUE", "OLLAMA_MAX_TRANSFER_STREAMS", "OLLAMA_MODELS", "OLLAMA_NOHISTORY", "OLLAMA_NOPRUNE",
    "OLLAMA_NO_CLOUD", "OLLAMA_NUM_PARALLEL", "OLLAMA_ORIGINS", "OLLAMA_REMOTES", "OLLAMA_SCHED_SPREAD",
    "OLLAMA_VULKAN", "ROCR_VISIBLE_DEVICES", "http_proxy", "https_proxy", "no_proxy",
}
SLOG = re.compile(r'^time=\S+ level=(INFO|WARN|ERROR|DEBUG|TRACE) source=\S+\.go:\d+ msg=')


def server_config(o) -> dict[str, str]:
    line = o.lines("server config")[0]
    body = re.search(r'env="map\[(.*)\]"$', line).group(1)
    # values never contain " K:" sequences for the keys we check; split on key boundaries
    keys = sorted(ASMAP_KEYS, key=len, reverse=True)
    pat = re.compile(r"(?:^| )(" + "|".join(map(re.escape, keys)) + r"):")
    marks = [(m.group(1), m.start(1), m.end()) for m in pat.finditer(body)]
    out = {}
    for i, (k, _, end) in enumerate(marks):
        stop = marks[i + 1][1] - 1 if i + 1 < len(marks) else len(body)
        out[k] = body[end:stop]
    return out


def parse_time(s: str) -> float:
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    return dt.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(2) == "Z" else m.group(2))).timestamp()


# --------------------------------------------------------------------------- start-up log


def test_startup_log_and_server_config(server):
    log = server.log()
    startup = log[: log.index('msg="vram-based default context"')].splitlines()[:-1]
    for line in startup:
        assert SLOG.match(line), line
    cfg = server_config(server)
    assert set(cfg) == ASMAP_KEYS
    assert cfg["OLLAMA_FLASH_ATTENTION"] == "false"
    assert cfg["OLLAMA_KEEP_ALIVE"] == "5m0s"
    assert cfg["OLLAMA_LOAD_TIMEOUT"] == "5m0s"
    assert cfg["OLLAMA_HOST"] == f"http://127.0.0.1:{server.port}"
    assert cfg["OLLAMA_MODELS"] == str(server.models)
    assert cfg["OLLAMA_NUM_PARALLEL"] == "1" and cfg["OLLAMA_MAX_QUEUE"] == "512"
    assert cfg["OLLAMA_DEBUG"] == "INFO" and cfg["OLLAMA_VULKAN"] == "true"
    assert cfg["OLLAMA_REMOTES"] == "[ollama.com]"
    assert cfg["OLLAMA_ORIGINS"].startswith("[http://localhost https://localhost")
    order = ["server config", "Ollama cloud disabled: false", f"Listening on 127.0.0.1:{server.port} (version {VERSION})",
             "discovering available GPUs...", "inference compute", "vram-based default context"]
    positions = [log.index(f'msg="{m}"') for m in order]
    assert positions == sorted(positions)
    cpu = server.lines("inference compute")[0]
    assert "id=cpu library=cpu" in cpu and "libdirs=ollama " in cpu
    assert "default_num_ctx=4096" in server.lines("vram-based default context")[0]


def test_keypair_is_made_first_and_serve_exits_when_it_cannot_be(server, tmp_path, release):
    key = Path(server.env["HOME"]) / ".ollama" / "id_ed25519"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    home = tmp_path / "badhome"
    home.mkdir()
    (home / ".ollama").write_text("a file where Ollama wants its directory")
    p = subprocess.run([sys.executable, str(release / "bin" / "ollama"), "serve"], capture_output=True, text=True,
                       env={"HOME": str(home), "OLLAMA_HOST": "127.0.0.1:9"}, timeout=30)
    assert p.returncode == 1
    assert f"Error: could not create directory mkdir {home}/.ollama: not a directory" in p.stderr


def test_server_config_parse_rules(start):
    o = start({
        "OLLAMA_KEEP_ALIVE": "-1", "OLLAMA_NUM_PARALLEL": "abc", "OLLAMA_FLASH_ATTENTION": "on",
        "OLLAMA_DEBUG": "2", "OLLAMA_CONTEXT_LENGTH": ' "8192" ', "OLLAMA_KV_CACHE_TYPE": "Q8_0",
        "OLLAMA_NOPRUNE": "yes", "OLLAMA_LLM_LIBRARY": "cpu_avx2",
    })
    cfg = server_config(o)
    assert cfg["OLLAMA_KEEP_ALIVE"] == "2562047h47m16.854775807s"
    assert cfg["OLLAMA_NUM_PARALLEL"] == "1"
    assert cfg["OLLAMA_FLASH_ATTENTION"] == "true"
    assert cfg["OLLAMA_DEBUG"] == "DEBUG-4"
    assert cfg["OLLAMA_CONTEXT_LENGTH"] == "8192"
    assert cfg["OLLAMA_KV_CACHE_TYPE"] == "Q8_0"  # shown raw; lower-cased only for llama-server
    assert cfg["OLLAMA_NOPRUNE"] == "true" and cfg["OLLAMA_LLM_LIBRARY"] == "cpu_avx2"
    warn = [line for line in o.log().splitlines() if "invalid environment variable" in line]
    assert warn == [next(x for x in warn)]
    assert "level=WARN source=config.go:263" in warn[0]
    assert "key=OLLAMA_NUM_PARALLEL value=abc default=1" in warn[0]
    assert o.log().index("invalid environment variable") < o.log().index('msg="server config"')
    # OLLAMA_DEBUG=2 is TRACE: the skipped GPU libraries are logged at DEBUG
    assert 'msg="skipping available library at user\'s request" requested=cpu_avx2' in o.log()


# --------------------------------------------------------------------------- simple endpoints


def test_root_version_head(server):
    r = requests.get(server.url + "/")
    assert r.status_code == 200 and r.text == "Ollama is running"
    assert requests.head(server.url + "/").status_code == 200
    assert requests.get(server.url + "/api/version").json() == {"version": VERSION}
    assert requests.get(server.url + "/api/nope").status_code == 404


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


# --------------------------------------------------------------------------- generate / ps


def test_generate_stream_and_ps(server, tiny):
    requests.post(server.url + "/api/generate", json={"model": tiny, "keep_alive": 0})  # start unloaded
    chunks = server.stream("/api/generate", {"model": "testbed/tiny", "prompt": "Why is the sky blue?"})
    text = "".join(c["response"] for c in chunks)
    assert text == "Test double reply: you said why is the sky blue."
    final = chunks[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and final["model"] == "testbed/tiny"
    for k in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"):
        assert isinstance(final[k], int) and final[k] > 0, k
    assert final["eval_count"] == len(chunks) - 1
    argv = server.lines("starting llama-server")[-1]
    blob = server.post("/api/show", {"model": tiny}).json()["modelfile"].split("\nFROM ")[1].split("\n")[0]
    assert f"llama-server --model {blob} --port " in argv
    assert ("--host 127.0.0.1 --no-webui --offline -c 4096 -np 1 --log-verbosity 4 --no-log-prefix "
            "--no-log-timestamps") in argv
    assert "--flash-attn auto" in argv and "-ngl" not in argv and "--cache-type-k" not in argv
    assert "load_tensors: offloaded 0/17 layers to GPU" in server.log()
    assert re.search(r'msg="llama-server started in \d+\.\d\d seconds"', server.log())

    r = server.post("/api/generate", {"model": tiny, "prompt": "one two three", "stream": False,
                                      "options": {"num_predict": 3}})
    body = r.json()
    assert body["response"] == "Test double reply:" and body["done_reason"] == "length"
    assert 0 < body["load_duration"] < final["load_duration"]  # already loaded: small, not absent

    ps = requests.get(server.url + "/api/ps").json()["models"]
    assert len(ps) == 1 and ps[0]["name"] == "testbed/tiny:latest"
    kv = 2 * 16 * 8 * (2048 // 32) * 4096 * 2
    assert ps[0]["size"] == (server.models / f"blobs/sha256-{blob.split('sha256-')[1]}").stat().st_size + kv
    assert ps[0]["size_vram"] == 0 and ps[0]["context_length"] == 4096
    assert 280 < parse_time(ps[0]["expires_at"]) - time.time() <= 301

    r = server.post("/api/generate", {"model": tiny, "keep_alive": 0, "stream": False})
    assert r.json()["done_reason"] == "unload"
    assert requests.get(server.url + "/api/ps").json() == {"models": []}


def test_chat_and_request_errors(server, tiny):
    r = server.post("/api/chat", {"model": tiny, "stream": False, "keep_alive": "1s",
                                  "messages": [{"role": "user", "content": "Hello chat"}]})
    assert r.json()["message"] == {"role": "assistant", "content": "Test double reply: you said hello chat."}
    r = server.post("/api/generate", {"model": tiny, "prompt": "x", "keep_alive": "300"})
    assert r.status_code == 400 and r.json() == {"error": 'time: missing unit in duration "300"'}
    r = server.post("/api/generate", {"model": "nope", "prompt": "x"})
    assert r.status_code == 404 and r.json() == {"error": "model 'nope' not found"}
    r = server.post("/api/generate", {"model": tiny, "prompt": "x", "options": {"num_ctx": "big"}})
    assert r.status_code == 500 and r.json() == {"error": 'option "num_ctx" must be of type integer'}


def test_keep_alive_expiry(server, tiny):
    server.post("/api/generate", {"model": tiny, "prompt": "hi", "keep_alive": 1, "stream": False})
    assert len(requests.get(server.url + "/api/ps").json()["models"]) == 1
    time.sleep(1.5)
    assert requests.get(server.url + "/api/ps").json()["models"] == []


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


# --------------------------------------------------------------------------- GPU discovery


def test_gpu_discovery_and_cpu_fallbacks(start, mirror):
    gpu = start(smi=FAKE_SMI_P4000)
    line = gpu.lines("inference compute")[0]
    for part in ("id=0", "filter_id=0", "library=CUDA", "compute=6.1", "name=CUDA0", 'description="Quadro P4000"',
                 "libdirs=ollama,cuda_v12", "driver=13.0", "pci_id=0000:01:00.0", "type=discrete",
                 'total="8.0 GiB"', 'available="8.0 GiB"'):
        assert part in line, (part, line)
    assert len(gpu.lines("inference compute")) == 1  # the Vulkan duplicate is dropped
    gpu.stream("/api/pull", {"model": "testbed/tiny"})
    r = gpu.post("/api/generate", {"model": "testbed/tiny", "prompt": "hi", "stream": False})
    assert r.status_code == 200
    assert "load_tensors: offloaded 17/17 layers to GPU" in gpu.log()
    argv = gpu.lines("starting llama-server")[-1]
    assert "--split-mode" not in argv and "--load-mode" not in argv  # one GPU: no placement flags
    ps = requests.get(gpu.url + "/api/ps").json()["models"][0]
    assert ps["size_vram"] == ps["size"] > 0

    for library in ("cuda", "cpu_avx2"):
        cpu = start({"OLLAMA_LLM_LIBRARY": library}, smi=FAKE_SMI_P4000)
        line = cpu.lines("inference compute")[0]
        assert "id=cpu library=cpu" in line and "libdirs=ollama " in line
        assert "skipping available library" not in cpu.log()  # DEBUG only

    hidden = start({"CUDA_VISIBLE_DEVICES": "-1"}, smi=FAKE_SMI_P4000)
    assert 'msg="user overrode visible devices" CUDA_VISIBLE_DEVICES=-1' in hidden.log()
    assert "library=Vulkan" in hidden.lines("inference compute")[0]  # Vulkan still sees the card
    none = start({"CUDA_VISIBLE_DEVICES": "-1", "OLLAMA_VULKAN": "0"}, smi=FAKE_SMI_P4000)
    assert "id=cpu library=cpu" in none.lines("inference compute")[0]
    broken = start(smi=FAKE_SMI_FAILING)
    assert broken.lines("failure during llama-server GPU discovery")
    assert "id=cpu library=cpu" in broken.lines("inference compute")[0]


# --------------------------------------------------------------------------- KV cache / flash attention


def test_quantized_kv_cache_needs_flash_attention(start):
    o = start({"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "0"})
    o.stream("/api/pull", {"model": "testbed/tiny"})
    r = o.post("/api/generate", {"model": "testbed/tiny", "prompt": "hi"})
    assert r.status_code == 500
    line = "llama_init_from_model: quantized V cache requires flash_attn to be enabled"
    assert r.json()["error"] == f"llama-server process has terminated: exit status 1: {line}\n{line}"
    argv = o.lines("starting llama-server")[-1]
    assert "--cache-type-k q8_0 --cache-type-v q8_0 --flash-attn off" in argv
    assert o.lines("Load failed")
    assert requests.get(o.url + "/api/ps").json() == {"models": []}

    ok = start({"OLLAMA_KV_CACHE_TYPE": "Q8_0"})  # flash attention auto: llama.cpp enables it
    ok.stream("/api/pull", {"model": "testbed/tiny"})
    assert ok.post("/api/generate", {"model": "testbed/tiny", "prompt": "hi", "stream": False}).status_code == 200
    assert "--cache-type-k q8_0 --cache-type-v q8_0 --flash-attn auto" in ok.lines("starting llama-server")[-1]

    bad = start({"OLLAMA_KV_CACHE_TYPE": "q9_0"})
    bad.stream("/api/pull", {"model": "testbed/tiny"})
    r = bad.post("/api/generate", {"model": "testbed/tiny", "prompt": "hi"})
    assert r.status_code == 500 and r.json()["error"].startswith("llama-server process has terminated")
    assert "Unsupported cache type: q9_0" in bad.log()


# --------------------------------------------------------------------------- concurrency


def test_parallel_slots_and_queue_limit(start, tmp_path, mirror):
    slow = stage_release(tmp_path / "slow-release", VERSION, "amd64", mirror.url,
                         tokens_per_s={"gpu": 20, "cpu": 20}, load_seconds=0.05)
    o = start({"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_QUEUE": "1"}, rel=slow)
    o.stream("/api/pull", {"model": "testbed/tiny"})
    o.post("/api/generate", {"model": "testbed/tiny"})  # load it first
    results = {}
    first_token = threading.Event()

    def gen(key, prompt):
        with requests.post(o.url + "/api/generate", json={"model": "testbed/tiny", "prompt": prompt},
                           stream=True, timeout=30) as r:
            results[key] = [r.status_code, 0.0]
            for _ in r.iter_lines():
                first_token.set()
            results[key][1] = time.monotonic()

    a = threading.Thread(target=gen, args=("a", "one two three four five six seven eight nine ten eleven twelve"))
    a.start()
    assert first_token.wait(10)
    b = threading.Thread(target=gen, args=("b", "second request"))
    b.start()
    time.sleep(0.3)  # b is now waiting for the only slot
    r = o.post("/api/generate", {"model": "testbed/tiny", "prompt": "third"})
    assert r.status_code == 503
    assert r.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
    a.join()
    b.join()
    assert results["a"][0] == results["b"][0] == 200
    assert results["b"][1] > results["a"][1]
