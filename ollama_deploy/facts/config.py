"""What configuration a host runs with: digests of the unit, drop-ins and release, live, saved and applied.

Example:
    host.get_fact(ConfigDigest, prefix="/usr/local")   # {"live": "…", "saved": "…", "applied": "…"}
"""
from __future__ import annotations

from pyinfra.api import FactBase

from ollama_deploy.lib.dropins import DROPIN_DIR

LAST_GOOD = "/var/lib/ollama-deploy/last-good"


# Digest of the configuration (and binary) the running Ollama was last started with.
APPLIED = "/var/lib/ollama-deploy/applied-digest"


CONFIG = f"/etc/systemd/system/ollama.service {DROPIN_DIR}/*.conf"


def digest_command(prefix: str) -> str:
    return f"cat {CONFIG} {prefix}/lib/ollama/.ollama-deploy-release 2>/dev/null | sha256sum | cut -c1-64"


class ConfigDigest(FactBase[dict]):
    """sha256 over the unit, drop-ins and installed release as they are on disk ("live"), as saved
    in LAST_GOOD ("saved"), and as the running Ollama was started with ("applied")."""

    def command(self, prefix="/usr/local"):
        return (f"{digest_command(prefix)}; cat {LAST_GOOD}/digest 2>/dev/null || echo none; "
                f"cat {APPLIED} 2>/dev/null || echo none")

    def process(self, output):
        live, saved, applied = (line.strip() for line in output[:3])
        return {"live": live, "saved": saved, "applied": applied}


class FilesDigest(FactBase[dict]):
    """sha256 over `files` as they are on disk ("live") and as recorded in `stamp` when the service
    reading them last (re)started ("applied"): they differ after a run died, or a restart failed,
    between writing and applying."""

    def command(self, files: str, stamp: str):
        return f"cat {files} 2>/dev/null | sha256sum | cut -c1-64; cat {stamp} 2>/dev/null || echo none"

    def process(self, output):
        live, applied = (line.strip() for line in output[:2])
        return {"live": live, "applied": applied}
