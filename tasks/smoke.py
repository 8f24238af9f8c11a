"""One streamed generate per host, through an SSH tunnel to the host's loopback (Ollama's port is
never exposed for this): time to first token, tokens/s and load time from Ollama's own timing
fields (nanoseconds). The host fails, with the reason, if it does not answer.

Results go to reports/smoke/<host>.json on the control node (the demo and verify read them).

Example (deploy.py):
    smoke_test()
"""
from __future__ import annotations

import http.client
import io
import json
import time
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from .facts import canonical_model, tuned_name
from .plan import plan_for
from .settings import selected_models

REPORT_DIR = Path("reports/smoke")
PORT = 11434


class _ChannelReader(io.RawIOBase):
    def __init__(self, channel):
        self._channel = channel

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._channel.recv(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _ChannelSocket:
    """The socket surface http.client uses, over a paramiko channel (whose own files cannot peek)."""

    def __init__(self, channel):
        self._channel = channel

    def sendall(self, data):
        self._channel.sendall(data)

    def makefile(self, mode):
        return io.BufferedReader(_ChannelReader(self._channel))

    def close(self):
        self._channel.close()


class _TunnelledHTTP(http.client.HTTPConnection):
    """HTTP over a paramiko direct-tcpip channel to the host's 127.0.0.1:PORT."""

    def __init__(self, transport, port, timeout):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self._transport = transport

    def connect(self):
        channel = self._transport.open_channel("direct-tcpip", ("127.0.0.1", self.port), ("127.0.0.1", 0),
                                               timeout=self.timeout)
        channel.settimeout(self.timeout)
        self.sock = _ChannelSocket(channel)


def _connection(target_host, timeout: float) -> http.client.HTTPConnection:
    client = getattr(target_host.connector, "client", None)
    if client is None:  # @local: Ollama runs on this machine
        return http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    return _TunnelledHTTP(client.get_transport(), PORT, timeout)


def generate_timed(conn: http.client.HTTPConnection, model: str, prompt: str) -> dict:
    """Stream one generate; return TTFT (wall clock, control node) and Ollama's timing figures."""
    body = json.dumps({"model": model, "prompt": prompt, "stream": True, "options": {"num_predict": 32}})
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


def _smoke(state, host, model: str, prompt: str, timeout: float):
    conn = _connection(host, timeout)
    try:
        result = generate_timed(conn, model, prompt)
    except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
        raise RuntimeError(f"smoke generate with {model} on {host.name} failed: {e}") from None
    finally:
        conn.close()
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{host.name}.json").write_text(json.dumps({"host": host.name, **result}, indent=2))
    logger.info(f"[{host.name}] smoke {model}: TTFT {result['ttft_ms']} ms, {result['tokens_per_s']} tok/s, "
                f"load {result['load_ms']} ms")


@deploy("Smoke")
def smoke_test():
    settings = plan_for(host).settings
    models = selected_models(settings)
    model = settings.ollama_smoke_model or (models[0] if models else None)
    if model and canonical_model(model) in {canonical_model(m) for m in settings.ollama_model_parameters}:
        model = tuned_name(model)  # the tuning is what the smoke must exercise
    if not settings.ollama_run_smoke or model is None:
        return
    python.call(name=f"Smoke: generate with {model}", function=_smoke, model=model,
                prompt=settings.ollama_smoke_prompt, timeout=float(settings.ollama_api_timeout))
