"""Which release artifact a host gets, and the sha256 it must have (pinned, or from the release's
sha256sum.txt, read once per release on the control node before any host is touched).

Example:
    artifact_for(settings, "aarch64")
    # Artifact(url='https://github.com/ollama/ollama/releases/download/v0.32.15/ollama-linux-arm64.tar.zst', sha256='…')
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import requests

from ollama_deploy.lib.settings import OllamaSettings

# uname -m → the arch word in Ollama's artifact names (docs/ollama-0.32.15.md §4).
ARCH_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class ReleaseError(ValueError):
    pass


# Mirror credentials come from the control node's environment only: never from inventory data,
# which is printed, committed and shared.
TOKEN_VARIABLE = "OLLAMA_DEPLOY_MIRROR_TOKEN"


def auth_headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_VARIABLE)
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class Artifact:
    name: str
    url: str  # where the host fetches it; for a local artifact, file:// of the uploaded copy
    sha256: str
    local_path: str | None = None  # on the control node, to upload first


CACHE_DIR = "/var/cache/ollama-deploy"


def parse_sums(text: str) -> dict[str, str]:
    """{file name: sha256} from sha256sum.txt lines (`<hex>  ./<file>`, as the release job writes)."""
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return sums


@lru_cache(maxsize=16)
def published_sums(sums_url: str) -> dict[str, str]:
    """The sums published next to a release (read once per URL, on the control node)."""
    try:
        reply = requests.get(sums_url, timeout=20, headers=auth_headers())
        reply.raise_for_status()
    except requests.RequestException as e:
        raise ReleaseError(f"cannot read {sums_url}: {e}") from None
    return parse_sums(reply.text)


def artifact_for(settings: OllamaSettings, machine_arch: str) -> Artifact:
    arch = ARCH_NAMES.get(machine_arch)
    if arch is None:
        raise ReleaseError(f"arch {machine_arch!r}: Ollama publishes Linux releases for amd64 and arm64 only")
    name = f"ollama-linux-{arch}.tar.zst"
    pinned = settings.ollama_release_sha256.get(name)
    if settings.ollama_release_local_dir:
        local = Path(settings.ollama_release_local_dir) / f"v{settings.ollama_version}"
        if not (local / name).is_file():
            raise ReleaseError(f"ollama_release_local_dir: {local / name} does not exist on the control node")
        sums_file = local / "sha256sum.txt"
        sha256 = pinned or (parse_sums(sums_file.read_text()).get(name) if sums_file.exists() else None)
        if sha256 is None:
            raise ReleaseError(f"no sha256 for {name}: pin it in ollama_release_sha256 or add {sums_file}")
        return Artifact(name, f"file://{CACHE_DIR}/{name}", sha256.lower(), str(local / name))
    base = f"{settings.ollama_release_base_url.rstrip('/')}/v{settings.ollama_version}"
    sha256 = pinned or published_sums(f"{base}/sha256sum.txt").get(name)
    if sha256 is None:
        raise ReleaseError(f"{base}/sha256sum.txt lists no {name}")
    return Artifact(name, f"{base}/{name}", sha256.lower())
