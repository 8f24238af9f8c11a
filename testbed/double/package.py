"""Stage the ollama-deploy TEST DOUBLE as an Ollama-shaped release tree.

``stage_release`` lays out what ``ollama-linux-<arch>.tar.zst`` contains
(docs/ollama-0.32.15.md §4), with the double in place of the real binaries::

    bin/ollama                               the double's launcher (mode 755)
    lib/ollama/test-double/ollama_double/    the double (stdlib-only Python)
    lib/ollama/test-double/ollama_deploy/gocompat/   the product's Go-compatible parsers (GGUF too)
    lib/ollama/test-double/config.json       version, arch, registry, speeds
    lib/ollama/llama-server                  stub that refuses to run
    lib/ollama/libggml-*.so, libllama.so     text placeholders
    lib/ollama/cuda_v12/, cuda_v13/ [, vulkan/ on amd64]   GPU variant dirs

The caller (the lead's release code) turns the tree into tarball + sha256.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PLACEHOLDER = "test double placeholder (ollama-deploy testbed); not a real library\n"

CPU_LIBS = [
    "libggml-base.so", "libggml.so", "libllama.so",
    "libggml-cpu-x64.so", "libggml-cpu-sse42.so", "libggml-cpu-sandybridge.so", "libggml-cpu-haswell.so",
    "libggml-cpu-skylakex.so", "libggml-cpu-icelake.so", "libggml-cpu-alderlake.so",
]
CPU_LIBS_ARM64 = ["libggml-base.so", "libggml.so", "libllama.so", "libggml-cpu-armv8.0_1.so",
                  "libggml-cpu-armv8.2_1.so", "libggml-cpu-armv8.6_1.so", "libggml-cpu-armv9.2_1.so"]
GPU_DIRS = {
    "amd64": {"cuda_v12": "libggml-cuda.so", "cuda_v13": "libggml-cuda.so", "vulkan": "libggml-vulkan.so"},
    "arm64": {"cuda_v12": "libggml-cuda.so", "cuda_v13": "libggml-cuda.so"},
}
LLAMA_SERVER_STUB = """#!/bin/sh
# ollama-deploy test double stub: there is no llama-server in this release.
echo "llama-server: this is an ollama-deploy test-double stub; it cannot run models" >&2
exit 1
"""


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def stage_release(staging_dir, version: str, arch: str, registry: str,
                  tokens_per_s: dict | None = None, load_seconds: float | None = None) -> Path:
    """Lay out a release tree for ``arch`` ("amd64" or "arm64") under ``staging_dir``.

    ``registry`` is the base URL of the static model mirror that stands in for
    registry.ollama.ai.  ``tokens_per_s``/``load_seconds`` override the
    simulated speeds (tests use fast values).  Returns the staging path.
    """
    if arch not in GPU_DIRS:
        raise ValueError(f"unsupported arch {arch!r}")
    root = Path(staging_dir)
    lib = root / "lib" / "ollama"
    td = lib / "test-double"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "bin_ollama", root / "bin" / "ollama")
    os.chmod(root / "bin" / "ollama", 0o755)

    pkg_dst = td / "ollama_double"
    if pkg_dst.exists():
        shutil.rmtree(pkg_dst)
    shutil.copytree(HERE / "ollama_double", pkg_dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The Go-compatible parsers the product uses (stdlib only), as a package: one source, no copies
    # of single files. The package's __init__ imports nothing, so pyinfra need not be on the host.
    product = td / "ollama_deploy"
    if product.exists():
        shutil.rmtree(product)
    (product / "gocompat").mkdir(parents=True)
    shutil.copyfile(REPO / "ollama_deploy" / "__init__.py", product / "__init__.py")
    shutil.copytree(REPO / "ollama_deploy" / "gocompat", product / "gocompat", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config = {
        "version": version,
        "arch": arch,
        "registry": registry,
        "tokens_per_s": dict(tokens_per_s or {"gpu": 80, "cpu": 12}),
        "load_seconds": 0.3 if load_seconds is None else load_seconds,
    }
    _write(td / "config.json", json.dumps(config, indent=2) + "\n")

    _write(lib / "llama-server", LLAMA_SERVER_STUB, 0o755)
    _write(lib / "llama-quantize", LLAMA_SERVER_STUB.replace("llama-server", "llama-quantize"), 0o755)
    for name in CPU_LIBS if arch == "amd64" else CPU_LIBS_ARM64:
        _write(lib / name, PLACEHOLDER)
    for sub, so in GPU_DIRS[arch].items():
        _write(lib / sub / so, PLACEHOLDER)

    for p in [root, *root.rglob("*")]:
        if p.is_dir():
            os.chmod(p, 0o755)
        elif p.is_file() and not p.stat().st_mode & stat.S_IXUSR:
            os.chmod(p, 0o644)
    return root
