"""Publish the Ollama test double to the mirror as a release with the real artifact layout.

Files and names match the official release (docs/ollama-0.32.15.md §4): `ollama-linux-<arch>.tar.zst` holding
`bin/ollama` and `lib/ollama/...`, plus `sha256sum.txt` with `./<file>` lines, under
`<base>/v<version>/`. The tarball is reproducible (sorted, zero mtimes, root-owned), so its
checksum only changes when the double's code does.

Example:
    publish_release(tb.mirror_root / "ollama/releases/download", OLLAMA_VERSION, "http://10.201.0.1:8701")
"""
from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .double.package import stage_release

ARCHES = ("amd64", "arm64")


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_tarball(staging: Path, dest: Path) -> None:
    tar_path = dest.with_suffix("")  # .tar
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(p for p in staging.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(staging)), recursive=False, filter=_reproducible)
    # The release job compresses with `zstd -19`; one thread keeps the output byte-identical.
    subprocess.run(["zstd", "-19", "-q", "-f", "--rm", str(tar_path), "-o", str(dest)], check=True)


def publish_release(release_base: Path, version: str, registry: str) -> dict[str, str]:
    """Build both arches into release_base/v<version>/; return {file name: sha256}."""
    out = release_base / f"v{version}"
    out.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    for arch in ARCHES:
        name = f"ollama-linux-{arch}.tar.zst"
        with tempfile.TemporaryDirectory() as tmp:
            staging = Path(tmp) / "stage"
            stage_release(staging, version, arch, registry)
            build_tarball(staging, out / name)
        sums[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    write_sums(out, sums)
    return sums


def write_sums(release_dir: Path, sums: dict[str, str]) -> None:
    """sha256sum.txt as the release job writes it: `<sha256>  ./<file>` lines."""
    (release_dir / "sha256sum.txt").write_text("".join(f"{h}  ./{n}\n" for n, h in sorted(sums.items())))
