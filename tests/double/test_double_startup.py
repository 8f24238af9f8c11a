"""End-to-end tests of the Ollama test double, run as a real subprocess on 127.0.0.1: start-up log,
server config, simple endpoints and GPU discovery.

Each test module gets its own shared ``server`` (a module-scoped fixture in conftest.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

from .conftest import FAKE_SMI_FAILING, FAKE_SMI_P4000, VERSION

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
