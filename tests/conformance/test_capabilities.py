"""Capabilities: a thinking model thinks unless a request says ``think: false``; an embedding model
cannot generate, embeds, and loads with one slot. Each test runs against the double and real Ollama
(server/images.go Capabilities, server/routes.go GenerateHandler and EmbedHandler, server/sched.go)."""
from __future__ import annotations

import math

from tests.conformance.test_runner import argv

PROMPT = "why is the sky blue?"


def _pull(ollama, srv, *models: str) -> list[str]:
    names = [ollama.model(m) for m in models]
    for name in names:
        srv.pull(name)
    return names


def test_capabilities_in_show_and_tags(ollama):
    srv = ollama.serve()
    plain, think, embed = _pull(ollama, srv, "real-tiny", "real-tiny-think", "real-tiny-embed")
    want = {plain: ["completion"], think: ["completion", "thinking"], embed: ["embedding"]}
    for name, caps in want.items():
        assert srv.post("/api/show", {"model": name}).json()["capabilities"] == caps, name
    tags = {m["name"]: m["capabilities"] for m in srv.get("/api/tags").json()["models"]}
    assert tags == {f"{name}:latest": caps for name, caps in want.items()}


def test_a_thinking_model_thinks_unless_told_not_to(ollama):
    srv = ollama.serve()
    plain, think = _pull(ollama, srv, "real-tiny", "real-tiny-think")
    body = {"model": think, "prompt": PROMPT, "options": {"num_predict": 6}}
    *tokens, final = srv.stream("/api/generate", body)
    # Real Ollama also sends chunks with neither (whitespace its thinking parser holds back or trims).
    thought = [c for c in tokens if "thinking" in c]
    assert thought and all(list(c) == ["model", "created_at", "response", "thinking", "done"] for c in thought)
    assert all(c["response"] == "" for c in tokens)  # the smoke's old check saw nothing
    assert all(list(c) == ["model", "created_at", "response", "done"] for c in tokens if "thinking" not in c)
    assert final["done"] and final["response"] == "" and "thinking" not in final and final["eval_count"] == 6
    whole = srv.post("/api/generate", {**body, "stream": False}).json()
    assert whole["response"] == "" and whole["thinking"]
    off = srv.post("/api/generate", {**body, "stream": False, "think": False}).json()
    assert off["response"] and "thinking" not in off
    r = srv.post("/api/generate", {"model": plain, "prompt": PROMPT, "think": True})
    assert (r.status_code, r.json()) == (400, {"error": f'"{plain}" does not support thinking'})


def test_an_embedding_model_cannot_generate_embeds_and_has_one_slot(ollama):
    srv = ollama.serve({"OLLAMA_NUM_PARALLEL": "3"})
    (embed,) = _pull(ollama, srv, "real-tiny-embed")
    r = srv.post("/api/generate", {"model": embed, "prompt": PROMPT, "options": {"num_predict": 4}})
    assert (r.status_code, r.json()) == (400, {"error": f'"{embed}" does not support generate'})
    assert srv.post("/api/generate", {"model": embed, "prompt": ""}).status_code == 400  # not even a load
    assert srv.post("/api/embed", {"model": embed}).json() == {"model": embed, "embeddings": []}  # loads only
    cmd = argv(srv)
    assert cmd[cmd.index("-np") + 1] == "1" and cmd[cmd.index("-c") + 1] == "4096"
    assert cmd[cmd.index("--embedding"):][:5] == ["--embedding", "-b", "2048", "-ub", "2048"]
    reply = srv.post("/api/embed", {"model": embed, "input": ["hello world", "the sky"]}).json()
    assert len(reply["embeddings"]) == 2 and all(len(v) == 64 for v in reply["embeddings"])
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-3) for v in reply["embeddings"])
    assert list(reply) == ["model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"]
    (loaded,) = srv.get("/api/ps").json()["models"]
    assert loaded["name"] == f"{embed}:latest"
