"""Custom pyinfra facts about Ollama on a host. Each tolerates Ollama being absent or down
(the command exits 0 and prints nothing), because a fact command that fails fails the host.

Example:
    host.get_fact(InstalledRelease, prefix="/usr/local")   # "3f1c…" or None
    host.get_fact(OllamaModels, api="http://127.0.0.1:11434")   # {"testbed/tiny:latest", ...}
"""
from __future__ import annotations

import json

from pyinfra.api import FactBase, FactProcessError

RELEASE_MARKER = "lib/ollama/.ollama-deploy-release"  # holds the sha256 of the installed artifact


class InstalledRelease(FactBase[str | None]):
    """sha256 of the release artifact installed under `prefix` by this tool, or None."""

    def command(self, prefix):
        return f"cat {prefix}/{RELEASE_MARKER} 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() or None if output else None


class OllamaVersion(FactBase[str | None]):
    """Version the running server reports on /api/version, or None when it does not answer."""

    def requires_command(self, api):
        return "curl"

    def command(self, api):
        return f"curl -fsS --max-time 2 {api}/api/version 2>/dev/null || true"

    def process(self, output):
        try:
            return json.loads("\n".join(output))["version"]
        except (ValueError, KeyError, TypeError) as e:
            raise FactProcessError(f"unexpected /api/version reply: {e}")


def canonical_model(name: str) -> str:
    """Ollama's short display name with an explicit tag: 'llama3.2' -> 'llama3.2:latest'."""
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaModels(FactBase[set]):
    """Models the server lists on /api/tags, canonical names; empty when the server is down."""

    @staticmethod
    def default():
        return set()

    def requires_command(self, api):
        return "curl"

    def command(self, api):
        return f"curl -fsS --max-time 5 {api}/api/tags 2>/dev/null || true"

    def process(self, output):
        try:
            return {canonical_model(m["name"]) for m in json.loads("\n".join(output)).get("models") or []}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise FactProcessError(f"unexpected /api/tags reply: {e}")
