"""One streamed generate per host, through an SSH tunnel to the host's loopback (Ollama's port is
never exposed for this): time to first token, tokens/s and load time from Ollama's own timing
fields (nanoseconds). The host fails, with the reason, if it does not answer.

The model is the first of the host's models that can generate: Ollama's /api/show lists
`completion` among its capabilities (an embedding model has only `embedding`, and /api/generate
answers it with 400). A host with none is skipped with a line saying so.

Thinking models (deepseek-r1, qwen3, gpt-oss): Ollama turns thinking on when a request omits
`think`, as clients do, and streams the reasoning in `thinking` before any `response`. TTFT is
the time to the first generated token of either kind (what the prompt and the queue cost, which
is what ollama_targets bounds); `answer_ms` is the time to the first `response` token, or null
when the reasoning outlasted the tokens asked for.

A run that finds Ollama's process, its models and the check settings as they were when the smoke and
verify last passed generates nothing (lib/checked.py): a no-op rerun loads no model.

Results go to reports/smoke/<host>.json on the control node (the demo and verify read them).

Example (deploy.py):
    smoke_test()
"""
from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from ollama_deploy.control.summary import warn
from ollama_deploy.control.tunnel import api_connection
from ollama_deploy.gocompat.names import canonical_model, tuned_name
from ollama_deploy.lib.checked import unchanged_since_passed
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.settings import api_url, selected_models
from ollama_deploy.tasks.rollback import fail_with_rollback

REPORT_DIR = Path("reports/smoke")


def generate_timed(conn: http.client.HTTPConnection, model: str, prompt: str, num_predict: int = 16) -> dict:
    """Stream one generate; return TTFT (wall clock, control node) and Ollama's timing figures.
    16 tokens are enough for a smoke test's tokens/s; the benchmark asks for more."""
    body = json.dumps({"model": model, "prompt": prompt, "stream": True, "options": {"num_predict": num_predict}})
    started = time.monotonic()
    conn.request("POST", "/api/generate", body=body, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {reply.read().decode(errors='replace')[:300]}")
    first: dict[str, float] = {}  # "thinking" / "response" -> seconds to the first token of that kind
    text: list[str] = []
    thought: list[str] = []
    final = None
    for raw in reply:
        chunk = json.loads(raw)
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        for kind, parts in (("thinking", thought), ("response", text)):
            if chunk.get(kind):
                first.setdefault(kind, time.monotonic() - started)
                parts.append(chunk[kind])
        if chunk.get("done"):
            final = chunk
            break
    if final is None or not first:
        raise RuntimeError("stream ended without tokens or without a done chunk")
    eval_s = final.get("eval_duration", 0) / 1e9
    answer = first.get("response")
    return {"model": model, "ttft_ms": round(min(first.values()) * 1000, 1),
            "answer_ms": None if answer is None else round(answer * 1000, 1), "thinking": bool(thought),
            "tokens_per_s": round(final.get("eval_count", 0) / eval_s, 2) if eval_s else 0.0,
            "eval_count": final.get("eval_count", 0), "load_ms": round(final.get("load_duration", 0) / 1e6, 1),
            "total_ms": round(final.get("total_duration", 0) / 1e6, 1), "response": "".join(text)[:200]}


def capabilities(conn: http.client.HTTPConnection, model: str) -> list[str]:
    """What the host's Ollama says `model` can do (/api/show); raises with Ollama's error text."""
    conn.request("POST", "/api/show", body=json.dumps({"model": model}), headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    body = json.loads(reply.read() or b"{}")
    if reply.status != 200:
        raise RuntimeError(f"HTTP {reply.status}: {body.get('error', body)} (/api/show)")
    return list(body.get("capabilities") or [])


def generating_model(candidates: list[str], capabilities_of) -> tuple[str | None, list[str]]:
    """The first candidate whose capabilities include completion, and a note per one passed over.

    >>> generating_model(["e", "g"], {"e": ["embedding"], "g": ["completion", "thinking"]}.get)
    ('g', ['e (embedding)'])
    """
    passed: list[str] = []
    for model in candidates:
        caps = capabilities_of(model)
        if "completion" in caps:
            return model, passed
        passed.append(f"{model} ({', '.join(caps) or 'no capabilities'})")
    return None, passed


def _smoke(state, host, candidates: list[str], prompt: str, timeout: float, api: str, changes=(),
           explicit: bool = False):
    settings = plan_for(host).settings
    if unchanged_since_passed(host, settings, smoke_candidates(settings)):
        logger.info(f"[{host.name}] smoke: passed before against this Ollama process and these models; "
                    "nothing generated (ollama_smoke_every_run generates anyway)")
        return
    changed = any(m.did_change() for m in changes)
    model: str | None = candidates[0]
    conn: http.client.HTTPConnection | None = None

    def capabilities_on_host(m: str) -> list[str]:
        try:
            assert conn is not None  # opened before generating_model() asks
            return capabilities(conn, m)
        except RuntimeError as e:  # a selected model whose pull failed (the run ends failing the host for it)
            if explicit or not str(e).startswith("HTTP 404"):
                raise
            return ["not on the host"]

    try:
        conn = api_connection(host, timeout, api)
        model, passed = generating_model(candidates, capabilities_on_host)
        for note in passed:
            warn(host.name, f"smoke: {note} cannot generate, passed over")
        if model is None:
            warn(host.name, f"smoke skipped: none of {', '.join(candidates)} can generate")
            return
        result = generate_timed(conn, model, prompt)
    except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
        return fail_with_rollback(host, f"smoke generate with {model} failed: {e}", changed, int(timeout))
    finally:
        if conn is not None:
            conn.close()
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{host.name}.json").write_text(json.dumps({"host": host.name, **result}, indent=2))
    answer = "" if not result["thinking"] else (
        f" (a thinking model: first answer token at {result['answer_ms']} ms)" if result["answer_ms"] is not None
        else " (a thinking model: still reasoning after 16 tokens)")
    logger.info(f"[{host.name}] smoke {model}: TTFT {result['ttft_ms']} ms{answer}, {result['tokens_per_s']} tok/s, "
                f"load {result['load_ms']} ms")


def check_names(model: str, settings) -> str:
    """The name the checks use for `model`: its tuned variant when it has parameters (the tuning is
    what the checks must exercise)."""
    tuned = {canonical_model(m) for m in settings.ollama_model_parameters}
    return tuned_name(model) if canonical_model(model) in tuned else model


def smoke_candidates(settings) -> list[str]:
    """The models the checks may run against, in order: the smoke model alone when one is set, else
    every selected model (the first that can generate is used)."""
    models = [settings.ollama_smoke_model] if settings.ollama_smoke_model else selected_models(settings)
    return [check_names(m, settings) for m in models]


@deploy("Smoke")
def smoke_test(changes=()):
    """`changes`: the operations whose change would be rolled back if the smoke fails."""
    plan = plan_for(host)
    settings = plan.settings
    not_pulled = {check_names(m, settings) for m in plan.missing}
    candidates = [m for m in smoke_candidates(settings) if m not in not_pulled]
    if not settings.ollama_run_smoke or not candidates:
        return
    python.call(name="Smoke: generate with the first model that can", function=_smoke, candidates=candidates,
                prompt=settings.ollama_smoke_prompt, timeout=float(settings.ollama_api_timeout), api=api_url(settings),
                changes=list(changes), explicit=bool(settings.ollama_smoke_model))
