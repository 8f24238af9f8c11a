"""Which release artifact a host gets, and the sha256 it must have (pinned, or from the release's
sha256sum.txt, read once per release on the control node before any host is touched).

Example:
    artifact_for(settings, "aarch64")
    # Artifact(url='https://github.com/ollama/ollama/releases/download/v0.32.15/ollama-linux-arm64.tar.zst', sha256='…')
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import requests

from .settings import OllamaSettings

# uname -m → the arch word in Ollama's artifact names (reference §4).
ARCH_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class ReleaseError(ValueError):
    pass


@dataclass(frozen=True)
class Artifact:
    url: str
    sha256: str


@lru_cache(maxsize=16)
def published_sums(sums_url: str) -> dict[str, str]:
    """{file name: sha256} from a release's sha256sum.txt (`<hex>  ./<file>` lines)."""
    try:
        reply = requests.get(sums_url, timeout=20)
        reply.raise_for_status()
    except requests.RequestException as e:
        raise ReleaseError(f"cannot read {sums_url}: {e}") from None
    sums = {}
    for line in reply.text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].removeprefix("./").lstrip("*")] = parts[0].lower()
    return sums


def artifact_for(settings: OllamaSettings, machine_arch: str) -> Artifact:
    arch = ARCH_NAMES.get(machine_arch)
    if arch is None:
        raise ReleaseError(f"arch {machine_arch!r}: Ollama publishes Linux releases for amd64 and arm64 only")
    name = f"ollama-linux-{arch}.tar.zst"
    base = f"{settings.ollama_release_base_url.rstrip('/')}/v{settings.ollama_version}"
    sha256 = settings.ollama_release_sha256.get(name)
    if sha256 is None:
        sha256 = published_sums(f"{base}/sha256sum.txt").get(name)
        if sha256 is None:
            raise ReleaseError(f"{base}/sha256sum.txt lists no {name}")
    return Artifact(f"{base}/{name}", sha256.lower())
