"""Inference: /api/generate (streamed and not), /api/ps, request keep_alive, the ``starting
llama-server`` argv, and the KV cache loads that fail. Each test runs against the double and
real Ollama; requests always set num_predict (the tiny real model never stops by itself)."""
from __future__ import annotations

import datetime as dt
import re
import time

import pytest

FINAL_KEYS = ["model", "created_at", "response", "done", "done_reason", "context", "total_duration",
              "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"]
PS_KEYS = ["name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"]
PS_DETAILS = {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
              "parameter_size": "122K", "quantization_level": "F16"}


def parse_time(s: str) -> dt.datetime:
    """RFC3339Nano (Go) -> aware datetime (nanoseconds cut to microseconds)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    assert m, s
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if m.group(3) == 'Z' else m.group(3)}")


def expires_in(srv) -> float:
    """Seconds from now to the (single) loaded model's expires_at."""
    (m,) = srv.get("/api/ps").json()["models"]
    return (parse_time(m["expires_at"]) - dt.datetime.now(dt.UTC)).total_seconds()


def wait_unloaded(srv, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while srv.get("/api/ps").json()["models"]:
        assert time.monotonic() < deadline, srv.get("/api/ps").text
        time.sleep(0.05)


def generate(srv, model: str, **extra):
    body = {"model": model, "prompt": "why is the sky blue?", "stream": False, **extra}
    body["options"] = {"num_predict": 8, **extra.get("options", {})}
    return srv.post("/api/generate", body)


def argv(srv) -> list[str]:
    """The last ``starting llama-server`` command, the blob path and port replaced."""
    cmd = srv.line("starting llama-server")["cmd"].split(" ")
    assert cmd[0].endswith("/lib/ollama/llama-server"), cmd[0]
    cmd = cmd[1:]
    cmd[cmd.index("--model") + 1] = "BLOB"
    assert cmd[cmd.index("--port") + 1].isdigit()
    cmd[cmd.index("--port") + 1] = "PORT"
    return cmd


def kv_flags(srv) -> list[str]:
    """``--cache-type-k T --cache-type-v T --flash-attn M`` of the last llama-server start."""
    cmd = argv(srv)
    return cmd[cmd.index("--cache-type-k"):][:6]


def test_generate_not_streamed(ollama):
    srv = ollama.serve()
    name = ollama.model()
    srv.pull(name)
    r = generate(srv, name)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
    cold = r.json()
    assert list(cold) == FINAL_KEYS
    assert (cold["model"], cold["done"], cold["done_reason"], cold["eval_count"]) == (name, True, "length", 8)
    assert isinstance(cold["response"], str) and cold["response"]
    assert cold["context"] and all(isinstance(t, int) for t in cold["context"])
    parse_time(cold["created_at"])
    for k in FINAL_KEYS[6:]:
        assert isinstance(cold[k], int) and cold[k] > 0, k
    assert cold["total_duration"] >= cold["load_duration"]
    warm = generate(srv, name).json()
    assert list(warm) == FINAL_KEYS  # load_duration is there for a loaded model too, just small
    assert 0 < warm["load_duration"] < cold["load_duration"]
    r = generate(srv, "nope")
    assert (r.status_code, r.json()) == (404, {"error": "model 'nope' not found"})


def test_generate_streamed(ollama):
    srv = ollama.serve()
    name = ollama.model()
    srv.pull(name)
    frames = srv.stream("/api/generate", {"model": name, "prompt": "hello", "options": {"num_predict": 4}})
    *tokens, final = frames
    assert tokens and all(list(f) == ["model", "created_at", "response", "done"] for f in tokens)
    assert all(f["done"] is False and f["model"] == name and f["response"] for f in tokens)
    assert list(final) == FINAL_KEYS
    assert (final["response"], final["done"], final["done_reason"]) == ("", True, "length")
    assert final["eval_count"] == len(tokens) == 4


def test_ps_after_generate(ollama):
    srv = ollama.serve()
    name = ollama.model()
    srv.pull(name)
    assert generate(srv, name).status_code == 200
    (m,) = srv.get("/api/ps").json()["models"]
    assert list(m) == PS_KEYS
    pub = ollama.mirror.published["testbed/real-tiny:latest"]
    assert (m["name"], m["model"], m["digest"]) == (f"{name}:latest", f"{name}:latest", pub["digest"][7:])
    assert m["details"] == PS_DETAILS
    assert (m["size_vram"], m["context_length"]) == (0, 4096)
    assert m["size"] > pub["total_bytes"]  # weights + KV cache + compute buffers
    assert 280 < expires_in(srv) <= 300  # OLLAMA_KEEP_ALIVE default 5m


def test_request_keep_alive_semantics(ollama):
    srv = ollama.serve({"OLLAMA_KEEP_ALIVE": "1h"})
    name = ollama.model()
    srv.pull(name)
    assert generate(srv, name).status_code == 200
    assert 3580 < expires_in(srv) <= 3600  # loaded without keep_alive: the server default
    assert generate(srv, name, keep_alive="5m").status_code == 200
    assert 280 < expires_in(srv) <= 300  # the request's keep_alive replaces the expiry
    assert generate(srv, name).status_code == 200
    assert 280 < expires_in(srv) <= 300  # omitted on a loaded model: its last keep_alive stays
    assert generate(srv, name, keep_alive=120).status_code == 200
    assert 100 < expires_in(srv) <= 120  # a number is seconds
    assert generate(srv, name, keep_alive=-1).status_code == 200
    (m,) = srv.get("/api/ps").json()["models"]
    assert parse_time(m["expires_at"]).year >= 2300  # negative: forever (now + MaxInt64 ns)
    r = generate(srv, name, keep_alive="300")
    assert (r.status_code, r.json()) == (400, {"error": 'time: missing unit in duration "300"'})
    r = srv.post("/api/generate", {"model": name, "keep_alive": 0})
    body = r.json()
    assert list(body) == ["model", "created_at", "response", "done", "done_reason"]
    assert (body["model"], body["response"], body["done"], body["done_reason"]) == (name, "", True, "unload")
    wait_unloaded(srv)
    body = srv.post("/api/generate", {"model": name}).json()  # empty prompt: just load
    assert (body["response"], body["done"], body["done_reason"]) == ("", True, "load")
    assert 3580 < expires_in(srv) <= 3600
    assert generate(srv, name, keep_alive=0, options={"num_predict": 2}).status_code == 200
    wait_unloaded(srv)  # keep_alive 0 with a prompt: unloaded once the request is done


BASE = ["--model", "BLOB", "--port", "PORT", "--host", "127.0.0.1", "--no-webui", "--offline"]
LOG_FLAGS = ["--log-verbosity", "4", "--no-log-prefix", "--no-log-timestamps", "--no-jinja", "--chat-template",
             "chatml", "--load-mode", "none"]
ARGV_CASES = {
    "defaults": ({}, {}, BASE + ["-c", "4096", "-np", "1"] + LOG_FLAGS + [
        "--flash-attn", "auto", "-b", "512", "-ub", "512", "--context-shift", "--keep", "4"], 4096),
    # per-model num_thread (from /api/create), request num_ctx, server parallel/KV/FA
    "parallel-kv-fa-threads": (
        {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_KV_CACHE_TYPE": "f16", "OLLAMA_FLASH_ATTENTION": "1"},
        {"num_ctx": 2048}, BASE + ["-c", "4096", "-np", "2"] + LOG_FLAGS + [
            "--cache-type-k", "f16", "--cache-type-v", "f16", "--flash-attn", "on", "-b", "512", "-ub", "512",
            "-t", "2", "--context-shift", "--keep", "4"], 2048),
    # OLLAMA_CONTEXT_LENGTH above n_ctx_train is clamped per slot; -c is slot size x parallel
    "context-clamped": ({"OLLAMA_CONTEXT_LENGTH": "8192", "OLLAMA_NUM_PARALLEL": "2", "OLLAMA_FLASH_ATTENTION": "false"},
                        {}, BASE + ["-c", "8192", "-np", "2"] + LOG_FLAGS + [
                            "--flash-attn", "off", "-b", "1024", "-ub", "1024", "-t", "2", "--context-shift",
                            "--keep", "4"], 4096),
}


@pytest.mark.parametrize("case", list(ARGV_CASES))
def test_llama_server_argv(ollama, case):
    env, options, want, ctx = ARGV_CASES[case]
    srv = ollama.serve(env)
    name = ollama.model()
    srv.pull(name)
    model = name
    if case != "defaults":
        events = srv.stream("/api/create", {"model": "real-tiny-threads", "from": name,
                                            "parameters": {"num_thread": 2}})
        assert events[-1] == {"status": "success"}
        model = "real-tiny-threads"
    r = generate(srv, model, options=options)
    assert r.status_code == 200, r.text
    assert argv(srv) == want
    blob = srv.line("starting llama-server")["cmd"].split(" ")[2]
    for msg, source in (("disabling mmap for llama-server load by default", "sched.go:1147"),
                        ("using llama-server for model", "server.go:109"),
                        ("loading model via llama-server", "llama_server.go:1048")):
        line = srv.line(msg)
        assert (line["source"], line["model"]) == (source, blob), line
    assert srv.line("disabling mmap for llama-server load by default")["reason"] == "cpu"
    assert srv.line("starting llama-server")["source"] == "llama_server.go:433"
    assert re.search(r'source=llama_server\.go:1362 msg="llama-server started in \d+\.\d\d seconds"', srv.log())
    assert (srv.line("loaded runners")["source"], srv.line("loaded runners")["count"]) == ("sched.go:728", "1")
    warns = srv.lines("requested context size too large for model")
    if case == "context-clamped":
        assert [(w["level"], w["source"], w["num_ctx"], w["n_ctx_train"]) for w in warns] == [
            ("WARN", "server.go:114", "8192", "4096")]
    else:
        assert warns == []
    assert srv.get("/api/ps").json()["models"][0]["context_length"] == ctx


def _failed_load(srv, model: str, want_error: str) -> None:
    r = generate(srv, model)
    assert (r.status_code, r.json()) == (500, {"error": want_error})
    failed = srv.line("Load failed")
    assert (failed["source"], failed["error"]) == ("sched.go:641", want_error)
    term = srv.line("llama-server terminated")
    assert (term["level"], term["source"], term["error"], term["exit"]) == ("ERROR", "llama_server.go:1023",
                                                                           "exit status 1", "1")
    assert srv.get("/api/ps").json() == {"models": []}


def test_quantized_kv_cache_without_flash_attention_fails(ollama):
    srv = ollama.serve({"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "0"})
    name = ollama.model()
    srv.pull(name)
    line = "llama_init_from_model: quantized V cache requires flash_attn to be enabled"
    # the line is kept from both llama_init_from_model passes (memory fit, then the real one)
    _failed_load(srv, name, f"llama-server process has terminated: exit status 1: {line}\n{line}")
    assert kv_flags(srv) == ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--flash-attn", "off"]


KV16 = "llama_init_from_model: K cache type q8_0 with block size 32 does not divide n_embd_head_k=16"
AUTO_ON = "llama_init_from_model: enabling flash_attn since it is required for quantized V cache"


@pytest.mark.parametrize("fa,want", [("1", f"{KV16}\n{KV16}"), ("", f"{KV16}\n{AUTO_ON}\n{KV16}")],
                         ids=["flash-attn-on", "flash-attn-auto"])
def test_q8_kv_cache_fails_on_head_size_16(ollama, fa, want):
    env = {"OLLAMA_KV_CACHE_TYPE": "q8_0", **({"OLLAMA_FLASH_ATTENTION": fa} if fa else {})}
    srv = ollama.serve(env)
    name = ollama.model("real-tiny-hd16")
    srv.pull(name)
    _failed_load(srv, name, f"llama-server process has terminated: exit status 1: {want}")
    assert kv_flags(srv) == ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0",
                                 "--flash-attn", "on" if fa else "auto"]


def test_q8_kv_cache_loads_on_head_size_32(ollama):
    srv = ollama.serve({"OLLAMA_KV_CACHE_TYPE": "Q8_0"})  # lower-cased before use
    name = ollama.model()
    srv.pull(name)
    r = generate(srv, name)
    assert r.status_code == 200 and r.json()["done_reason"] == "length"
    assert kv_flags(srv) == ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--flash-attn", "auto"]
    assert AUTO_ON in srv.log() and not srv.lines("Load failed")
    assert srv.server_config()["OLLAMA_KV_CACHE_TYPE"] == "Q8_0"


@pytest.mark.parametrize("kv_type", ["bf16", "q4_1", "iq4_nl", "q5_1"])
def test_other_cache_types_llama_cpp_takes_load_with_flash_attention(ollama, kv_type):
    """Ollama passes any cache type through; these are among llama.cpp b10488's kv_cache_types."""
    srv = ollama.serve({"OLLAMA_KV_CACHE_TYPE": kv_type, "OLLAMA_FLASH_ATTENTION": "true"})
    name = ollama.model()
    srv.pull(name)
    r = generate(srv, name)
    assert r.status_code == 200 and r.json()["done_reason"] == "length", r.text
    assert kv_flags(srv) == ["--cache-type-k", kv_type, "--cache-type-v", kv_type, "--flash-attn", "on"]
