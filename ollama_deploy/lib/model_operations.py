"""The operations on a host's models: pull, remove, tune (per-model parameters), seed from the fleet cache.

Like pyinfra's own operations, each checks a fact first and yields nothing when the host is right.

Example:
    model_pulled(name="Model qwen2.5:0.5b", model="qwen2.5:0.5b")
"""
from __future__ import annotations

import json
import os
import shlex

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, FunctionCommand, QuoteString, StringCommand, operation

from ollama_deploy.control.fleetcache import sha256_of
from ollama_deploy.facts.ollama import (
    BLOBS_VERIFIED,
    BlobStates,
    OllamaModelParameters,
    OllamaModels,
    PathStates,
)
from ollama_deploy.gocompat.names import canonical_model, tuned_name
from ollama_deploy.gocompat.params import format_params, shown_params
from ollama_deploy.lib.operations import quoted, site_loaded


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
def model_pulled_from_site(model: str, site_model: str, load, insecure: bool = False,
                           api: str = "http://127.0.0.1:11434", ollama: str = "/usr/local/bin/ollama"):
    """
    Pull `model` from the site registry as `site_model`, then give it its ordinary name, unless
    present. `load` (called on the control node first) makes the registry serve it.

    **Example:**

    .. code:: python

        model_pulled_from_site(name="Model qwen2.5:0.5b", model="qwen2.5:0.5b",
                               site_model="models.site:5443/library/qwen2.5:0.5b", load=lambda: None)
    """
    if canonical_model(model) in host.get_fact(OllamaModels, api=api):
        host.noop(f"model {canonical_model(model)} present")
        return
    yield FunctionCommand(site_loaded, (load,), {})
    client = f"env OLLAMA_HOST={shlex.quote(api)} {ollama}"
    site, ordinary = shlex.quote(site_model), shlex.quote(model)
    # cp writes one manifest; rm then keeps every blob the ordinary name's manifest still names.
    yield StringCommand("sh", "-c", shlex.quote(
        f"{client} pull {'--insecure ' if insecure else ''}{site} && {client} cp {site} {ordinary} && "
        f"{client} rm {site} >/dev/null"))


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


def typed_parameters(params: dict) -> dict:
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
    tuned, wanted = tuned_name(model), typed_parameters(parameters)
    current = host.get_fact(OllamaModelParameters, api=api, model=tuned)
    # The tuned model inherits the base model's own parameters (stop words, ...) under ours.
    base: dict | None = host.get_fact(OllamaModelParameters, api=api, model=canonical_model(model))
    inherited = shown_params(base or {})
    if current is not None and shown_params(current) == {**inherited, **wanted}:
        host.noop(f"model {tuned} has these parameters")
        return
    body = json.dumps({"model": tuned, "from": canonical_model(model), "parameters": wanted, "stream": False})
    yield StringCommand("sh", "-c", shlex.quote(
        f"curl -fsS -X POST {api}/api/create -d {shlex.quote(body)} | grep -q '\"status\":\"success\"' || "
        f"{{ echo 'ollama-deploy: creating {tuned} failed' >&2; exit 1; }}"))


@operation()
def models_seeded(models_dir: str, manifests: dict, blobs: dict):
    """
    Copy models from the control node's fleet cache into the host's models dir, in Ollama's layout:
    each blob that is missing or does not match its digest (a corrupted one is replaced), then the
    manifests, which is when Ollama lists a model. One command checks every file; the copies go
    over the deploy's own SSH connection into a staging directory beside blobs/ and are renamed
    into place, so Ollama never reads a half-copied blob.

    **Example:**

    .. code:: python

        models_seeded(name="Seed models from the fleet cache", models_dir="/usr/share/ollama/.ollama/models",
                      manifests={"manifests/registry.ollama.ai/library/qwen2.5-coder/7b": "/root/.cache/…/7b"},
                      blobs={"sha256-…": "/root/.cache/ollama-deploy/models/blobs/sha256-…"})
    """
    owned = "ollama:ollama"
    dirs = sorted({"blobs"} | {"/".join(rel.split("/")[:depth]) for rel in manifests
                               for depth in range(1, len(rel.split("/")))}, key=lambda d: (d.count("/"), d))
    wanted = {**{d: ("dir", f"{owned}:755") for d in dirs},
              **{f"blobs/{name}": (name.split("-", 1)[1], f"{owned}:644") for name in blobs},
              **{rel: (sha256_of(local), f"{owned}:644") for rel, local in manifests.items()}}
    staging = f"{models_dir}/.ollama-deploy-incoming"  # a run killed mid-copy leaves it: removed below
    others = [f"{models_dir}/{p}" for p in wanted if not p.startswith("blobs/")] + [staging]
    paths: dict = host.get_fact(PathStates, paths=others)
    current = {**paths,
               **{f"{models_dir}/blobs/{name}": state
                  for name, state in host.get_fact(BlobStates, models_dir=models_dir, names=sorted(blobs)).items()}}
    stale = [p for p, state in wanted.items() if current.get(f"{models_dir}/{p}") != state]
    if not stale:
        if staging in current:
            yield StringCommand("rm", "-rf", QuoteString(staging))
        else:
            host.noop(f"{len(manifests)} models present and verified")
        return
    sources = {**{f"blobs/{name}": local for name, local in blobs.items()}, **manifests}
    copies = [p for p in stale if p in sources and current.get(f"{models_dir}/{p}", ("",))[0] != wanted[p][0]]
    if copies:  # a big model takes a while to copy: say what is coming
        size = sum(os.path.getsize(sources[p]) for p in copies)
        host.log(f"copying {len(copies)} files ({size / 2**20:.0f} MiB) from the fleet cache", logger.info)
    yield StringCommand("rm", "-rf", QuoteString(staging), "&&", "mkdir", "-m", "700", QuoteString(staging))
    for i, p in enumerate(copies):
        yield FileUploadCommand(sources[p], f"{staging}/{i}")
    new_dirs = [d for d in dirs if d in stale]
    files = [f"{staging}/{i}" for i in range(len(copies))] + [p for p in stale if p not in copies and p not in dirs]
    script = [f"cd {shlex.quote(models_dir)}"]
    if new_dirs:  # parents first (dirs is sorted by depth)
        script += [f"mkdir -p {quoted(new_dirs)}", f"chown {owned} {quoted(new_dirs)}", f"chmod 755 {quoted(new_dirs)}"]
    if files:
        script += [f"chown {owned} {quoted(files)}", f"chmod 644 {quoted(files)}"]
    # Blobs before manifests (`wanted` lists them first): a model is listed only once all of it is in place.
    script += [f"mv -f {shlex.quote(f'{staging}/{i}')} {shlex.quote(p)}" for i, p in enumerate(copies)]
    # Every wanted blob is verified now: record them so the next run need not hash them again.
    script.append(f"for n in {quoted(sorted(blobs))}; do echo \"$n $(stat -c %s:%.9Y:%i blobs/$n)\"; done "
                  f"> {BLOBS_VERIFIED}.new && mv -f {BLOBS_VERIFIED}.new {BLOBS_VERIFIED}")
    script.append(f"rm -rf {shlex.quote(staging)}")
    yield StringCommand("sh", "-c", QuoteString(" && ".join(script)))
