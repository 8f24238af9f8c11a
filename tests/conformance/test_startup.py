"""Start-up behaviour: keypair, the ``server config`` line and its env parse rules, CPU discovery,
/api/version. Each test runs against the double and against real Ollama (fixture ``ollama``)."""
from __future__ import annotations

import re
import stat
import time

import pytest

from ollama_deploy.gocompat import OLLAMA_VERSION as VERSION

# built-in origins, per host: http, https, http:*, https:*
ORIGINS_BUILTIN = [f"{s}://{h}{p}" for h in ("localhost", "127.0.0.1", "0.0.0.0")
                   for p, s in (("", "http"), ("", "https"), (":*", "http"), (":*", "https"))]
ORIGINS_APPS = ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]
FOREVER = "2562047h47m16.854775807s"


def defaults(srv) -> dict:
    """The server config map of a server started with only the fixture's env (seen on real 0.32.15)."""
    proxy = "http://127.0.0.1:9"
    return {
        "CUDA_VISIBLE_DEVICES": "", "GGML_VK_VISIBLE_DEVICES": "", "GPU_DEVICE_ORDINAL": "",
        "HIP_VISIBLE_DEVICES": "", "HSA_OVERRIDE_GFX_VERSION": "", "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy,
        "LLAMA_ARG_FIT": "", "LLAMA_ARG_FIT_TARGET": "", "NO_PROXY": "", "OLLAMA_CONTEXT_LENGTH": "0",
        "OLLAMA_DEBUG": "INFO", "OLLAMA_DEBUG_LOG_REQUESTS": "false", "OLLAMA_EDITOR": "",
        "OLLAMA_FLASH_ATTENTION": "false", "OLLAMA_GO_TEMPLATE": "true", "OLLAMA_GPU_OVERHEAD": "0",
        "OLLAMA_HOST": f"http://127.0.0.1:{srv.port}", "OLLAMA_IGPU_ENABLE": "", "OLLAMA_KEEP_ALIVE": "5m0s",
        "OLLAMA_KV_CACHE_TYPE": "", "OLLAMA_LLM_LIBRARY": "", "OLLAMA_LOAD_TIMEOUT": "5m0s",
        "OLLAMA_MAX_LOADED_MODELS": "0", "OLLAMA_MAX_QUEUE": "512", "OLLAMA_MAX_TRANSFER_STREAMS": "4",
        "OLLAMA_MODELS": str(srv.models), "OLLAMA_NOHISTORY": "false", "OLLAMA_NOPRUNE": "false",
        "OLLAMA_NO_CLOUD": "true", "OLLAMA_NUM_PARALLEL": "1",
        "OLLAMA_ORIGINS": "[" + " ".join(ORIGINS_BUILTIN + ORIGINS_APPS) + "]",
        "OLLAMA_REMOTES": "[ollama.com]", "OLLAMA_SCHED_SPREAD": "false", "OLLAMA_VULKAN": "true",
        "ROCR_VISIBLE_DEVICES": "", "http_proxy": proxy, "https_proxy": proxy, "no_proxy": "",
    }


def test_keypair_written_at_first_start_only(ollama):
    srv = ollama.serve()
    key = srv.home / ".ollama" / "id_ed25519"
    pub = key.with_name("id_ed25519.pub")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o755
    assert pub.read_text().startswith("ssh-ed25519 ")
    # cmd.go initializeKeypair prints to stdout, not to the journal
    out = srv.stdout()
    assert f"Couldn't find '{key}'. Generating new private key.\n" in out
    assert "Your new public key is: \n\nssh-ed25519 " in out
    before = key.read_bytes()
    srv.stop()
    again = ollama.serve(home=srv.home)
    assert key.read_bytes() == before
    assert "Couldn't find" not in again.stdout()


def test_server_config_line_with_defaults(ollama):
    srv = ollama.serve()
    line = srv.line("server config")
    assert line["level"] == "INFO" and line["source"] == "routes.go:1951"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)", line["time"]), line["time"]
    keys = list(srv.server_config())
    assert keys == sorted(keys)  # Go prints map keys sorted
    assert srv.server_config() == defaults(srv)
    cloud = srv.line("Ollama cloud disabled: true")
    assert cloud["source"] == "routes.go:1953"
    listening = srv.line(f"Listening on 127.0.0.1:{srv.port} (version 0.32.15)")
    assert listening["source"] == "routes.go:2008"


ENV_CASES = {
    "bools-uints-origins-host": (
        {"OLLAMA_FLASH_ATTENTION": "yes", "OLLAMA_NOPRUNE": "TRUE", "OLLAMA_SCHED_SPREAD": "0",
         "OLLAMA_NOHISTORY": "'1'", "OLLAMA_VULKAN": "off", "OLLAMA_NUM_PARALLEL": "abc",
         "OLLAMA_MAX_QUEUE": "-5", "OLLAMA_GPU_OVERHEAD": "1GB", "OLLAMA_CONTEXT_LENGTH": ' "2048" ',
         "OLLAMA_MAX_LOADED_MODELS": "2", "OLLAMA_KV_CACHE_TYPE": "F16",
         "OLLAMA_ORIGINS": "http://a.example,https://b.example:*",
         "OLLAMA_HOST": "'http://127.0.0.1:{port}/ollama'"},
        {"OLLAMA_FLASH_ATTENTION": "true", "OLLAMA_NOPRUNE": "true", "OLLAMA_SCHED_SPREAD": "false",
         "OLLAMA_NOHISTORY": "true", "OLLAMA_VULKAN": "true", "OLLAMA_NUM_PARALLEL": "1",
         "OLLAMA_MAX_QUEUE": "512", "OLLAMA_GPU_OVERHEAD": "0", "OLLAMA_CONTEXT_LENGTH": "2048",
         "OLLAMA_MAX_LOADED_MODELS": "2", "OLLAMA_KV_CACHE_TYPE": "F16",
         "OLLAMA_ORIGINS": "[" + " ".join(["http://a.example", "https://b.example:*"] + ORIGINS_BUILTIN
                                          + ORIGINS_APPS) + "]",
         "OLLAMA_HOST": "http://127.0.0.1:{port}/ollama"},
        [("config.go:263", "OLLAMA_NUM_PARALLEL", "abc", "1"), ("config.go:263", "OLLAMA_MAX_QUEUE", "-5", "512"),
         ("config.go:292", "OLLAMA_GPU_OVERHEAD", "1GB", "0")]),
    "keep-alive-5m": ({"OLLAMA_KEEP_ALIVE": "5m", "OLLAMA_LOAD_TIMEOUT": "10m"},
                      {"OLLAMA_KEEP_ALIVE": "5m0s", "OLLAMA_LOAD_TIMEOUT": "10m0s"}, []),
    "keep-alive-300": ({"OLLAMA_KEEP_ALIVE": "300", "OLLAMA_LOAD_TIMEOUT": "90"},
                       {"OLLAMA_KEEP_ALIVE": "5m0s", "OLLAMA_LOAD_TIMEOUT": "1m30s"}, []),
    "keep-alive-minus-1": ({"OLLAMA_KEEP_ALIVE": "-1", "OLLAMA_LOAD_TIMEOUT": "0"},
                           {"OLLAMA_KEEP_ALIVE": FOREVER, "OLLAMA_LOAD_TIMEOUT": FOREVER}, []),
    "keep-alive-forever": ({"OLLAMA_KEEP_ALIVE": "forever", "OLLAMA_LOAD_TIMEOUT": "1.5"},
                           {"OLLAMA_KEEP_ALIVE": "5m0s", "OLLAMA_LOAD_TIMEOUT": "5m0s"}, []),
    "keep-alive-1h30m": ({"OLLAMA_KEEP_ALIVE": "1h30m", "OLLAMA_LOAD_TIMEOUT": "-1s"},
                         {"OLLAMA_KEEP_ALIVE": "1h30m0s", "OLLAMA_LOAD_TIMEOUT": FOREVER}, []),
}


@pytest.mark.parametrize("case", list(ENV_CASES))
def test_env_parse_rules_in_server_config(ollama, case):
    env, want, warnings = ENV_CASES[case]
    srv = ollama.serve(env)
    want = {k: v.replace("{port}", str(srv.port)) for k, v in want.items()}
    got = srv.server_config()
    assert {k: got[k] for k in want} == want
    assert {k: v for k, v in got.items() if k not in want} == {k: v for k, v in defaults(srv).items() if k not in want}
    warns = srv.lines("invalid environment variable, using default")
    for source, key, value, default in warnings:
        hits = [w for w in warns if w["key"] == key]
        assert hits, f"no WARN for {key}"
        assert {(w["level"], w["source"], w["value"], w["default"]) for w in hits} == {("WARN", source, value, default)}
    assert {w["key"] for w in warns} == {k for _, k, _, _ in warnings}
    assert not any("level=WARN" in x and "keep" in x.lower() for x in srv.log().splitlines())
    if case.startswith("bools"):
        srv.line(f"Listening on 127.0.0.1:{srv.port} (version 0.32.15)")
        assert srv.get("/api/version").json() == {"version": VERSION}


def test_cpu_inference_compute_line(ollama):
    srv = ollama.serve()
    lines = srv.lines("inference compute")
    assert len(lines) == 1
    got = lines[0]
    size = r"\d+(\.\d)? (B|KiB|MiB|GiB)"
    assert re.fullmatch(size, got.pop("total")) and re.fullmatch(size, got.pop("available"))
    got.pop("time")
    assert got == {"level": "INFO", "source": "types.go:50", "msg": "inference compute", "id": "cpu",
                   "library": "cpu", "compute": "", "name": "cpu", "description": "cpu", "libdirs": "ollama",
                   "driver": "", "pci_id": "", "type": ""}
    ctx = srv.line("vram-based default context")
    assert (ctx["source"], ctx["total_vram"], ctx["default_num_ctx"]) == ("routes.go:2058", "0 B", "4096")


def test_version_and_root(ollama):
    srv = ollama.serve()
    r = srv.get("/api/version")
    assert r.status_code == 200 and r.json() == {"version": VERSION}
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    r = srv.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert srv.get("/api/tags").json() == {"models": []}
    assert srv.get("/api/ps").json() == {"models": []}
    r = srv.get("/api/nothing-here")
    assert (r.status_code, r.text) == (404, "404 page not found")


@pytest.mark.parametrize("no_cloud", ["", "1"])
def test_cloud_calls_at_start_unless_cloud_is_off(ollama, no_cloud):
    """Unless OLLAMA_NO_CLOUD, Ollama calls ollama.com at start (here the closed proxy refuses it);
    with it, it says so and makes no such call."""
    srv = ollama.serve({"OLLAMA_NO_CLOUD": no_cloud})
    assert srv.line("Ollama cloud disabled: " + ("true" if no_cloud else "false"))
    if no_cloud:
        srv.get("/api/tags")
        time.sleep(0.5)  # the calls run in goroutines after the listener is up: give them their chance
        assert "refresh failed" not in srv.log() and "hydration failed" not in srv.log()
    else:
        srv.wait_log('msg="model recommendations refresh failed"')
        srv.wait_log('msg="model show cloud cache hydration failed"')
        assert "https://ollama.com/" in srv.line("model recommendations refresh failed")["error"]


def test_the_declaration_of_variables_ollama_reads_matches_the_pinned_source(ollama, tmp_path):
    """tasks/ollama_env.READS against the source of the pinned Go module (the one the real build
    uses), and the server config line of a running server against READS' logged variables."""
    from ollama_deploy.lib.ollama_env import READS, differences, read_source
    from testbed.real_ollama import module_source

    if ollama.kind == "real":
        assert differences(read_source(module_source(tmp_path))) == []
    logged = {k for k in ollama.serve().server_config() if k.startswith("OLLAMA_")}
    assert logged == {name for name, var in READS.items() if var.logged}
