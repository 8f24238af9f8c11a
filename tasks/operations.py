"""Custom pyinfra operations for Ollama. Each checks the host at execution time and yields
nothing when it is already in the wanted state, so a second deploy reports no change.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.files import File as FileFact
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files

from .facts import (RELEASE_MARKER, InstalledRelease, OllamaModelParameters, OllamaModels, OllamaVersion,
                    canonical_model, tuned_name)
from .goparse import format_params

# Replaces bin/ollama and lib/ollama only after the download's sha256 matched and it unpacked;
# the previous lib/ollama is swapped out by rename, never half-overwritten.
_INSTALL_SCRIPT = """set -eu
mkdir -p {cache} {prefix}/bin {prefix}/lib
work=$(mktemp -d {cache}/release.XXXXXX)
trap 'rm -rf "$work" {cleanup}' EXIT
curl -fsSL --retry 3 --connect-timeout 10 {auth} -o "$work/artifact" {url}
if ! echo "{sha256}  $work/artifact" | sha256sum -c --status; then
    echo "ollama-deploy: sha256 mismatch for {url}: expected {sha256}, got $(sha256sum "$work/artifact" | cut -d' ' -f1); nothing replaced" >&2
    exit 1
fi
mkdir "$work/tree"
tar --zstd -xf "$work/artifact" -C "$work/tree"
test -x "$work/tree/bin/ollama" || {{ echo "ollama-deploy: {url} has no bin/ollama; nothing replaced" >&2; exit 1; }}
echo {sha256} > "$work/tree/{marker}"
rm -rf {prefix}/lib/ollama.previous
if [ -d {prefix}/lib/ollama ]; then mv {prefix}/lib/ollama {prefix}/lib/ollama.previous; fi
mv "$work/tree/lib/ollama" {prefix}/lib/ollama
mv -f "$work/tree/bin/ollama" {prefix}/bin/ollama
rm -rf {prefix}/lib/ollama.previous
"""


@operation()
def release_installed(url: str, sha256: str, prefix: str = "/usr/local", cache_dir: str = "/var/cache/ollama-deploy",
                      curl_config: str | None = None):
    """
    Install an Ollama release artifact (a .tar.zst with bin/ollama and lib/ollama/) under `prefix`.

    + url: the artifact's URL
    + sha256: its expected sha256 (hex); checked before anything is replaced
    + prefix: install prefix
    + cache_dir: where the download is staged
    + curl_config: a curl config file on the host holding the mirror's Authorization header (so the
      secret is in no command line or log); removed once used

    **Example:**

    .. code:: python

        release_installed(
            name="Install Ollama 0.32.15",
            url="https://github.com/ollama/ollama/releases/download/v0.32.15/ollama-linux-amd64.tar.zst",
            sha256="…",
        )
    """
    if host.get_fact(InstalledRelease, prefix=prefix) == sha256:
        host.noop(f"Ollama artifact {sha256[:12]} already installed in {prefix}")
        return
    q = shlex.quote
    # An artifact uploaded from the control node (air-gapped) is not kept once installed.
    uploaded = url.removeprefix("file://") if url.startswith(f"file://{cache_dir}/") else None
    # Removed on any exit: an uploaded artifact (it is not kept) and the credentials file.
    cleanup = " ".join(q(p) for p in (uploaded, curl_config) if p)
    script = _INSTALL_SCRIPT.format(cache=q(cache_dir), prefix=q(prefix), url=q(url), sha256=sha256,
                                    marker=RELEASE_MARKER, cleanup=cleanup,
                                    auth=f"-K {q(curl_config)}" if curl_config else "")
    yield StringCommand("sh", "-c", q(script))


@operation()
def api_answers(api: str = "http://127.0.0.1:11434", timeout: int = 60):
    """
    Wait until Ollama's API answers on `api`, failing the host (with the last journal lines) after `timeout` s.

    **Example:**

    .. code:: python

        api_answers(name="Ollama API answers", timeout=60)
    """
    if host.get_fact(OllamaVersion, api=api):
        host.noop(f"Ollama answers on {api}")
        return
    tries = timeout * 10
    yield StringCommand("sh", "-c", shlex.quote(
        f"for i in $(seq {tries}); do curl -fsS --max-time 1 {api}/api/version >/dev/null 2>&1 && exit 0; "
        f"sleep 0.1; done; echo \"ollama-deploy: Ollama API did not answer on {api} within {timeout}s; "
        f"last journal lines:\" >&2; journalctl -u ollama -n 15 --no-pager >&2; exit 1"))


@operation()
def model_pulled(model: str, api: str = "http://127.0.0.1:11434", ollama: str = "/usr/local/bin/ollama",
                 size_bytes: int = 0, models_dir: str = ""):
    """
    Pull `model` through the Ollama API (the `ollama pull` client shows progress) unless present.

    **Example:**

    .. code:: python

        model_pulled(name="Model qwen2.5-coder:7b", model="qwen2.5-coder:7b")
    """
    wanted = canonical_model(model)
    if wanted in host.get_fact(OllamaModels, api=api):
        host.noop(f"model {wanted} present")
        return
    pull = f"env OLLAMA_HOST={shlex.quote(api)} {ollama} pull {shlex.quote(model)}"
    if size_bytes and models_dir:
        # Refuse before pulling rather than fill the disk: what is already there stays untouched.
        need_mib, q = size_bytes // 2**20 + 1, shlex.quote(models_dir)
        pull = (f"free=$(($(df -P -k {q} | awk 'NR==2 {{print $4}}') / 1024)); "
                f"if [ $free -lt {need_mib} ]; then echo \"ollama-deploy: not enough space for {model} in "
                f"{models_dir}: needs {need_mib} MiB, $free MiB free; nothing was removed\" >&2; exit 1; fi; {pull}")
    # The client talks to the API given by OLLAMA_HOST and exits non-zero on a streamed error.
    yield StringCommand("sh", "-c", shlex.quote(pull))


@operation()
def model_absent(model: str, api: str = "http://127.0.0.1:11434", ollama: str = "/usr/local/bin/ollama"):
    """
    Remove `model` if the server lists it.

    **Example:**

    .. code:: python

        model_absent(name="Remove old model", model="llama2:7b")
    """
    if canonical_model(model) not in host.get_fact(OllamaModels, api=api):
        host.noop(f"model {model} absent")
        return
    yield StringCommand("env", f"OLLAMA_HOST={shlex.quote(api)}", ollama, "rm", shlex.quote(model))


def _typed(params: dict) -> dict:
    """Parameters as Ollama stores them (api.FormatParams), so settings and /api/show compare equal."""
    return format_params({k: [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in params.items()})


@operation()
def model_tuned(model: str, parameters: dict, api: str = "http://127.0.0.1:11434"):
    """
    Create (or re-create) '<model>-tuned' from `model` with `parameters` as its PARAMETERs,
    unless it exists with exactly these parameters. Thread count and GPU layers are model
    parameters in Ollama, not server variables; this is how they really apply.

    **Example:**

    .. code:: python

        model_tuned(name="Tuned qwen2.5-coder:7b", model="qwen2.5-coder:7b",
                    parameters={"num_thread": 10, "num_ctx": 8192})
    """
    tuned, wanted = tuned_name(model), _typed(parameters)
    current = host.get_fact(OllamaModelParameters, api=api, model=tuned)
    # The tuned model inherits the base model's own parameters (stop words, ...) under ours.
    inherited = format_params(host.get_fact(OllamaModelParameters, api=api, model=canonical_model(model)) or {})
    if current is not None and format_params(current) == {**inherited, **wanted}:
        host.noop(f"model {tuned} has these parameters")
        return
    body = json.dumps({"model": tuned, "from": canonical_model(model), "parameters": wanted, "stream": False})
    yield StringCommand("sh", "-c", shlex.quote(
        f"curl -fsS -X POST {api}/api/create -d {shlex.quote(body)} | grep -q '\"status\":\"success\"' || "
        f"{{ echo 'ollama-deploy: creating {tuned} failed' >&2; exit 1; }}"))


@operation()
def file_content(path: str, content: str | None, mode: str = "644"):
    """
    Make the root-owned file at `path` hold exactly `content`, or remove it when `content` is None.

    The new content is uploaded beside the file under a name systemd ignores, then renamed over
    it: a run killed mid-upload never leaves a half-written unit or drop-in for systemd to read.
    One operation for both cases, so every host runs the same operations in the same order
    (pyinfra orders operations across hosts; per-host branches between two operations cycle).

    **Example:**

    .. code:: python

        file_content(name="Drop-in performance.conf", path="/etc/systemd/system/ollama.service.d/performance.conf",
                     content="[Service]\nEnvironment=\"OLLAMA_KEEP_ALIVE=1h\"\n")
    """
    if content is None:
        yield from files.file._inner(path=path, present=False)
        return
    current = host.get_fact(FileFact, path=path)
    wanted = hashlib.sha256(content.encode()).hexdigest()
    if current and host.get_fact(Sha256File, path=path) == wanted and current["user"] == "root" \
            and current["group"] == "root" and current["mode"] == int(mode):  # pyinfra gives 644 for rw-r--r--
        host.noop(f"{path} is up to date")
        return
    staged = f"{path}.ollama-deploy-new"  # not *.conf / *.service: systemd never reads it
    yield from files.put._inner(src=StringIO(content), dest=staged, user="root", group="root", mode=mode,
                                force=True)
    yield StringCommand("mv", "-f", QuoteString(staged), QuoteString(path))


@operation()
def model_seeded(model: str, manifest_relpath: str, manifest: str, blobs: dict, models_dir: str):
    """
    Copy a model from the control node's fleet cache into the host's models dir, in Ollama's layout:
    each blob that is missing or differs (a corrupted one is replaced), then the manifest. One
    operation per model keeps the operation order the same on every host.

    **Example:**

    .. code:: python

        model_seeded(name="Seed qwen2.5-coder:7b", model="qwen2.5-coder:7b",
                     manifest_relpath="manifests/registry.ollama.ai/library/qwen2.5-coder/7b",
                     manifest="/root/.cache/ollama-deploy/models/manifests/...",
                     blobs={"sha256-…": "/root/.cache/ollama-deploy/models/blobs/sha256-…"},
                     models_dir="/usr/share/ollama/.ollama/models")
    """
    owner = {"user": "ollama", "group": "ollama"}
    # Directories Ollama must be able to write into later (its own pulls), so not root's.
    parts = manifest_relpath.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        yield from files.directory._inner(path=f"{models_dir}/{'/'.join(parts[:depth])}", mode="755", **owner)
    yield from files.directory._inner(path=f"{models_dir}/blobs", mode="755", **owner)
    for file_name, local in sorted(blobs.items()):
        yield from files.put._inner(src=local, dest=f"{models_dir}/blobs/{file_name}", mode="644", **owner)
    yield from files.put._inner(src=manifest, dest=f"{models_dir}/{manifest_relpath}", mode="644", **owner)
