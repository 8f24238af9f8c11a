"""One streamed generate per host, through an SSH tunnel to the host's loopback (Ollama's port is
never exposed for this): time to first token, tokens/s and load time from Ollama's own timing
fields (nanoseconds). The host fails, with the reason, if it does not answer.

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

from .facts import canonical_model, tuned_name
from .tunnel import api_connection
from .plan import plan_for
from .rollback import fail_with_rollback
from .settings import api_url, selected_models

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
    ttft, text, final = None, [], None
    for raw in reply:
        chunk = json.loads(raw)
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        if chunk.get("response") and ttft is None:
            ttft = time.monotonic() - started
        text.append(chunk.get("response", ""))
        if chunk.get("done"):
            final = chunk
            break
    if final is None or ttft is None:
        raise RuntimeError("stream ended without tokens or without a done chunk")
    eval_s = final.get("eval_duration", 0) / 1e9
    return {"model": model, "ttft_ms": round(ttft * 1000, 1),
            "tokens_per_s": round(final.get("eval_count", 0) / eval_s, 2) if eval_s else 0.0,
            "eval_count": final.get("eval_count", 0), "load_ms": round(final.get("load_duration", 0) / 1e6, 1),
            "total_ms": round(final.get("total_duration", 0) / 1e6, 1), "response": "".join(text)[:200]}


def _smoke(state, host, model: str, prompt: str, timeout: float, api: str, changes=()):
    conn = api_connection(host, timeout, api)
    try:
        result = generate_timed(conn, model, prompt)
    except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
        fail_with_rollback(host, f"smoke generate with {model} failed: {e}",
                           any(m.did_change() for m in changes), int(timeout))
    finally:
        conn.close()
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{host.name}.json").write_text(json.dumps({"host": host.name, **result}, indent=2))
    logger.info(f"[{host.name}] smoke {model}: TTFT {result['ttft_ms']} ms, {result['tokens_per_s']} tok/s, "
                f"load {result['load_ms']} ms")


def smoke_model(settings) -> str | None:
    """The model checks run against: the smoke model or the first selected one, tuned if it has parameters."""
    models = selected_models(settings)
    model = settings.ollama_smoke_model or (models[0] if models else None)
    if model and canonical_model(model) in {canonical_model(m) for m in settings.ollama_model_parameters}:
        model = tuned_name(model)  # the tuning is what the checks must exercise
    return model


@deploy("Smoke")
def smoke_test(changes=()):
    """`changes`: the operations whose change would be rolled back if the smoke fails."""
    settings = plan_for(host).settings
    model = smoke_model(settings)
    if not settings.ollama_run_smoke or model is None:
        return
    python.call(name=f"Smoke: generate with {model}", function=_smoke, model=model,
                prompt=settings.ollama_smoke_prompt, timeout=float(settings.ollama_api_timeout), api=api_url(settings),
                changes=list(changes))
