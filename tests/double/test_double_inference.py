"""End-to-end tests of the Ollama test double, run as a real subprocess on 127.0.0.1: generate and ps,
chat and request errors, keep-alive, KV cache types and concurrency.

Each test module gets its own shared ``server`` (a module-scoped fixture in conftest.py).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import requests

from .conftest import VERSION, stage_release


def parse_time(s: str) -> float:
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    return dt.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(2) == "Z" else m.group(2))).timestamp()


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
