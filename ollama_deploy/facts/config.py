"""What configuration a service runs with: a digest of its files live on disk, as recorded when it
last (re)started, and (for Ollama's rollback) as last saved good.

Example:
    host.get_fact(FilesDigest, files=ollama_files("/usr/local"), stamp=APPLIED, saved=SAVED)
    # {"live": "…", "applied": "…", "saved": "…"}
"""
from __future__ import annotations

from pyinfra.api import FactBase

from ollama_deploy.facts.ollama import RELEASE_MARKER
from ollama_deploy.lib.dropins import DROPIN_DIR

LAST_GOOD = "/var/lib/ollama-deploy/last-good"
SAVED = f"{LAST_GOOD}/digest"  # the digest of the configuration saved in LAST_GOOD

# Digest of the configuration (and binary) the running Ollama was last started with.
APPLIED = "/var/lib/ollama-deploy/applied-digest"

# The Ollama process (InvocationID) and models the smoke generate and verify last passed against.
CHECKED = "/var/lib/ollama-deploy/checked"


CONFIG = f"/etc/systemd/system/ollama.service {DROPIN_DIR}/*.conf"


def ollama_files(prefix: str) -> str:
    """What Ollama runs with: its unit, its drop-ins and the installed release (its marker)."""
    return f"{CONFIG} {prefix}/{RELEASE_MARKER}"


def digest_command(files: str) -> str:
    """Shell: sha256 over `files` (glob patterns allowed; missing ones are skipped)."""
    return f"cat {files} 2>/dev/null | sha256sum | cut -c1-64"


class FilesDigest(FactBase[dict]):
    """sha256 over `files` as they are on disk ("live"), as recorded in `stamp` when the service
    reading them last (re)started ("applied"; they differ after a run died, or a restart failed,
    between writing and applying) and, if given, as recorded in `saved` ("saved"). "none" where a
    stamp is missing."""

    def command(self, files: str, stamp: str, saved: str | None = None):
        stamps = [stamp] + ([saved] if saved else [])
        return "; ".join([digest_command(files)] + [f"cat {path} 2>/dev/null || echo none" for path in stamps])

    def process(self, output):
        return dict(zip(("live", "applied", "saved"), (line.strip() for line in output)))
