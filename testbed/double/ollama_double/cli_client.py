"""The HTTP client of the ``ollama`` command (api.ClientFromEnvironment).

OLLAMA_HOST picks the server as in the real client; a failure comes back as
CLIError holding the server's error string, which each command prints as
``Error: ...`` the way cmd/cmd.go does.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from ollama_deploy.gocompat import hostport

from .config import VERSION

NOT_RUNNING = "could not connect to ollama server, run 'ollama serve' to start it"


class CLIError(Exception):
    pass


def base_url() -> str:
    h = hostport.connectable_host(os.environ.get("OLLAMA_HOST"))
    host = h.host or "127.0.0.1"
    u = f"{h.scheme}://{hostport.go_join_host_port(host, h.port)}"
    return u + ("/" + h.path if h.path else "")


def request(method: str, path: str, body=None, timeout: float | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url() + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/x-ndjson",
                                          "User-Agent": f"ollama/{VERSION} (test double)"})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - OLLAMA_HOST


def _error_of(e: urllib.error.HTTPError) -> str:
    raw = e.read().decode("utf-8", "replace")
    try:
        return json.loads(raw).get("error") or raw
    except ValueError:
        return raw.strip() or f"{e.code} {e.reason}"


def call(method: str, path: str, body=None):
    """One JSON request; raises CLIError with the server's error string."""
    try:
        with request(method, path, body) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        raise CLIError(_error_of(e)) from None
    except (urllib.error.URLError, ConnectionError) as e:
        raise CLIError(NOT_RUNNING) from e
    return json.loads(raw) if raw.strip() else {}


def stream(path: str, body):
    """Yield NDJSON objects; an {"error": ...} line becomes CLIError."""
    try:
        resp = request("POST", path, body)
    except urllib.error.HTTPError as e:
        raise CLIError(_error_of(e)) from None
    except (urllib.error.URLError, ConnectionError) as e:
        raise CLIError(NOT_RUNNING) from e
    with resp:
        for line in resp:
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("error"):
                raise CLIError(obj["error"])
            yield obj
