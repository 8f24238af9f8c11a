"""Every deploy setting, declared once: type, default, drop-in, target, description, whether Ollama reads it.

Host data keys starting with `ollama_` are settings. Their values come from the profile
(lib/profiles.py), then the settings given to deploy_ollama(), then group data, per-host inventory data
and `--data` (pyinfra's own precedence). `resolve(data)` validates them and returns an `OllamaSettings`;
each value's rule is a type from lib/checks.py. `dropins(settings)` (lib/dropins.py) turns that into
the systemd drop-in files the deploy writes.

Example:
    s = resolve({"ollama_keep_alive": "1h", "ollama_flash_attention": True})
    dropins(s)["performance.conf"]   # [DropinLine('Environment', 'OLLAMA_FLASH_ATTENTION=true', ...), ...]
"""
from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ollama_deploy.gocompat import OLLAMA_VERSION
from ollama_deploy.gocompat.hostport import connectable_host
from ollama_deploy.lib import checks
from ollama_deploy.lib.checks import (
    CpuQuota,
    CpuWeight,
    KeepAlive,
    KvCacheType,
    LibraryDir,
    MemoryMax,
    ModelNames,
    ModelParameters,
    Networks,
    OllamaHostValue,
    Parallel,
    PlainPath,
    Sha256s,
    Threads,
    TimeSpan,
    Unsigned,
    Url,
    Version,
    VisibleDevices,
)

PREFIX = "ollama_"
SITE_REGISTRY_PREFIX = "site_registry_"  # a site registry host's settings (lib/site_registry_settings.py)
# Keys operators bring from hand-tuned hosts (docs/hand-tuned-hosts.md): Ollama 0.32.15 never reads these
# variables (docs/ollama-0.32.15.md §3).
PLACEBOS = {
    "ollama_num_threads": "OLLAMA_NUM_THREADS is never read by Ollama; for every model set ollama_llama_threads = N "
                          "(LLAMA_ARG_THREADS, read by llama-server), for one model the parameter num_thread: "
                          "ollama_model_parameters = {'<model>': {'num_thread': N}}",
    "ollama_num_gpu_layers": "OLLAMA_NUM_GPU_LAYERS is never read by Ollama; GPU layers are the per-model "
                             "parameter num_gpu: ollama_model_parameters = {'<model>': {'num_gpu': N}}",
    "ollama_no_cuda": "OLLAMA_NO_CUDA is never read by Ollama; to keep GPUs away set "
                      "ollama_cuda_visible_devices='-1', or per model num_gpu 0",
    **{f"ollama_{v}": f"{v.upper()} is never read by Ollama (llama-server uses its own thread pool); use "
                      "ollama_llama_threads (every model) or the per-model parameter num_thread in "
                      "ollama_model_parameters"
       for v in ("omp_num_threads", "mkl_num_threads", "openblas_num_threads", "veclib_maximum_threads")},
}
DEFAULT_MODELS_DIR = "/usr/share/ollama/.ollama/models"  # Ollama's default under the ollama user's HOME


def setting(default: Any, description: str, *, dropin: str | None = None, env: str | None = None,
            directive: str | None = None, unit: str = "") -> Any:
    """Declare a setting. `env` is an environment variable set in `dropin` (whether Ollama reads it is
    tasks/ollama_env's declaration), `directive` a [Service] line."""
    return Field(default, description=description,
                 json_schema_extra={"dropin": dropin, "env": env, "directive": directive, "unit": unit})


class OllamaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Install
    ollama_version: Version = setting(OLLAMA_VERSION, "Ollama release to install (pinned).")
    ollama_release_base_url: Url = setting(
        "https://github.com/ollama/ollama/releases/download",
        "Where releases live: <base>/v<version>/ollama-linux-<arch>.tar.zst (a mirror for air-gapped sites).")
    ollama_release_sha256: Sha256s = setting(
        {}, "Pinned sha256 per artifact file name; files not listed are checked against the release's sha256sum.txt.")
    ollama_release_local_dir: str | None = setting(
        None, "Air-gapped sites: a directory on the control node laid out like the release base "
              "(v<version>/ollama-linux-<arch>.tar.zst and sha256sum.txt); the artifact is uploaded over SSH.")
    ollama_prefix: PlainPath = setting("/usr/local", "Install prefix: <prefix>/bin/ollama and <prefix>/lib/ollama/.")
    ollama_fleet_cache: bool = setting(
        False, "Fetch each release artifact and model once on the control node (verified) and seed hosts from "
               "it over SSH, instead of each host downloading them.")
    ollama_fleet_cache_dir: str = setting("~/.cache/ollama-deploy", "The control node's fleet cache.")
    ollama_models_local_dir: str | None = setting(
        None, "Air-gapped sites: a directory on the control node in Ollama's models layout (manifests/, blobs/), "
              "such as a connected machine's ~/.ollama/models; models are verified and seeded from it over SSH "
              "(implies ollama_fleet_cache).")
    ollama_site_registry: Url | None = setting(
        None, "Models come from this registry at the site (https://name[:port]; a host of the inventory's "
              "site_registry group, or an existing one): the control node loads each model into it once, hosts "
              "pull it over the LAN with Ollama's own client and keep its ordinary name.")
    ollama_site_registry_http_networks: Networks = setting(
        [], "Networks on which the site registry may be reached over plain HTTP (http:// URLs only; the "
            "registry's address must be in one of them).")
    ollama_site_ca_file: str | None = setting(
        None, "The site CA's certificate (PEM, a control-node path): trusted by each host's Ollama and release "
              "download (not the host's trust store), and by the control node when it loads the site registry.")

    # performance.conf
    ollama_flash_attention: bool | None = setting(
        None, "Flash attention; unset lets llama.cpp decide per model and device (auto).",
        dropin="performance.conf", env="OLLAMA_FLASH_ATTENTION")
    ollama_keep_alive: KeepAlive = setting(
        None, "How long an idle model stays loaded (Go duration such as 30m, or seconds; negative = forever).",
        dropin="performance.conf", env="OLLAMA_KEEP_ALIVE", unit="duration")
    ollama_context_length: Unsigned | None = setting(
        None, "Default context length per request (0 = Ollama's VRAM-based default).",
        dropin="performance.conf", env="OLLAMA_CONTEXT_LENGTH", unit="tokens")
    ollama_num_parallel: Parallel | None = setting(
        None, "Parallel requests per loaded model (1-256); each gets its own context.",
        dropin="performance.conf", env="OLLAMA_NUM_PARALLEL")
    ollama_max_loaded_models: Unsigned | None = setting(
        None, "Models kept loaded at once (0 = 3 per GPU).",
        dropin="performance.conf", env="OLLAMA_MAX_LOADED_MODELS")
    ollama_max_queue: Unsigned | None = setting(
        None, "Requests waiting before the server answers 503 busy.",
        dropin="performance.conf", env="OLLAMA_MAX_QUEUE")
    ollama_kv_cache_type: KvCacheType | None = setting(
        None, "KV cache type (llama.cpp's f16 when unset); the block types (q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1) "
              "need flash attention and a head size of a multiple of 32, or the model fails to load.",
        dropin="performance.conf", env="OLLAMA_KV_CACHE_TYPE")
    ollama_llama_threads: Threads | None = setting(
        None, "CPU threads llama-server computes with, for every model (llama.cpp reads LLAMA_ARG_THREADS; Ollama "
              "passes its environment on, and -t only for a model with num_thread, which wins). Unset: one per "
              "physical core. ggml's threads wait for each other by spinning: never more than the host's CPUs.",
        dropin="performance.conf", env="LLAMA_ARG_THREADS")

    # 10-gpu.conf
    ollama_cuda_visible_devices: VisibleDevices | None = setting(
        None, "GPUs Ollama may use, by index (in CUDA_DEVICE_ORDER) or UUID, comma-separated.",
        dropin="10-gpu.conf", env="CUDA_VISIBLE_DEVICES")
    ollama_cuda_device_order: Literal["PCI_BUS_ID", "FASTEST_FIRST"] | None = setting(
        None, "CUDA device numbering; PCI_BUS_ID matches nvidia-smi's order.",
        dropin="10-gpu.conf", env="CUDA_DEVICE_ORDER")
    ollama_sched_spread: bool | None = setting(
        None, "Split every model across all GPUs, even one that fits on one GPU (without it, a model too big "
              "for any single GPU already goes across all of them).",
        dropin="10-gpu.conf", env="OLLAMA_SCHED_SPREAD")
    ollama_vulkan: bool | None = setting(
        None, "Ollama's Vulkan backend (on when unset, in 0.32.15 on Linux); it drives an NVIDIA card too, and "
              "CUDA_VISIBLE_DEVICES does not hide the card from it.",
        dropin="10-gpu.conf", env="OLLAMA_VULKAN")
    ollama_llm_library: LibraryDir | None = setting(
        None, "Restrict GPU discovery to one library directory under lib/ollama (cuda_v12, cuda_v13, vulkan, ...).",
        dropin="10-gpu.conf", env="OLLAMA_LLM_LIBRARY")
    ollama_gpu_overhead: Unsigned | None = setting(
        None, "Bytes per GPU that Ollama subtracts when it picks the VRAM-tiered default context (and shows "
              "in its gpu memory log line); it reserves nothing when placing models.",
        dropin="10-gpu.conf", env="OLLAMA_GPU_OVERHEAD", unit="bytes")

    # resources.conf
    ollama_cpu_quota: CpuQuota | None = setting(
        None, "systemd CPUQuota, e.g. 2000% for 20 CPUs' worth of time (derived: threads less 1/6 for the OS).",
        dropin="resources.conf", directive="CPUQuota", unit="percent")
    ollama_cpu_weight: CpuWeight | None = setting(
        None, "systemd CPUWeight (1-10000, default 100).", dropin="resources.conf", directive="CPUWeight")
    ollama_memory_max: MemoryMax | None = setting(
        None, "systemd MemoryMax, e.g. 20G (derived on CPU hosts: 5/8 of RAM).",
        dropin="resources.conf", directive="MemoryMax", unit="bytes, K/M/G/T suffix (1024-based)")

    # listen.conf and the firewall: Ollama's API has no authentication, so it stays on loopback
    # unless an allowlist of client networks comes with the address.
    ollama_host: OllamaHostValue | None = setting(
        None, "Address Ollama listens on ([scheme://]host[:port]); unset is 127.0.0.1:11434. A non-loopback "
              "address needs ollama_allowed_networks.", dropin="listen.conf", env="OLLAMA_HOST")
    ollama_allowed_networks: Networks = setting(
        [], "Client networks (CIDR) admitted by an nftables rule when Ollama listens beyond loopback; "
            "all other sources are dropped.")
    ollama_origins: list[str] | None = setting(
        None, "Extra browser origins Ollama accepts (appended to its localhost defaults); '*' needs "
              "ollama_allow_any_origin.", dropin="listen.conf", env="OLLAMA_ORIGINS")
    ollama_allow_any_origin: bool = setting(False, "Allow OLLAMA_ORIGINS='*' (any web page may call the API).")
    # On by default: at every start Ollama 0.32.15 otherwise calls ollama.com (model recommendations,
    # the cloud model cache), which leaks from private hosts and fails on air-gapped ones.
    ollama_no_cloud: bool = setting(
        True, "Turn off Ollama's cloud features: no calls to ollama.com at start (model recommendations, cloud "
              "model cache) and no cloud models or web search.", dropin="listen.conf",
        env="OLLAMA_NO_CLOUD")

    ollama_adopt: bool = setting(
        False, "Take over a host whose ollama.service was set up by hand or by another installer: its unit files and "
               "drop-ins move to a dated backup under /var/lib/ollama-deploy/adopted/, its models directory is kept. "
               "Without it such a host is refused, one line per directive found.")

    ollama_watch: bool = setting(
        False, "Install ollama-check.timer: verify's checks (settings in Ollama's server config, the compute library, "
               "models on the CPU of a GPU host) every ollama_watch_interval, as Prometheus metrics in "
               "/var/lib/prometheus/node-exporter/ollama_check.prom for node_exporter's textfile collector.")
    ollama_watch_interval: TimeSpan = setting("5min", "How often ollama-check runs (a systemd time span).")
    ollama_watch_heal: bool = setting(
        False, "GPU hosts, with ollama_watch: when the check finds Ollama fallen back from CUDA (seed 003's "
               "suspend/resume), reload nvidia_uvm and restart Ollama, once per boot (the check then runs as root).")
    ollama_uninstall_models: bool = setting(False, "uninstall.py: also remove the models directory.")
    ollama_uninstall_account: bool = setting(
        False, "uninstall.py: also remove the ollama user, its group and its home (which holds the default models "
               "directory: then set ollama_uninstall_models too).")

    ollama_resume_fix: bool = setting(
        False, "GPU hosts: a systemd sleep hook that reloads nvidia_uvm and restarts Ollama after resume (seed 003).")

    # models-path.conf
    ollama_models_dir: PlainPath = setting(
        DEFAULT_MODELS_DIR, "Where models are stored; a drop-in is written only when not the default.",
        dropin="models-path.conf", env="OLLAMA_MODELS")

    # Models and smoke test
    ollama_models: ModelNames = setting([], "Models to pull (name[:tag]); present ones are skipped.")
    ollama_extra_models: ModelNames = setting(
        [], "More models for one host, added to ollama_models (so a host need not repeat its group's list).")
    ollama_prune_models: bool = setting(False, "Remove models that are not listed.")
    ollama_run_smoke: bool = setting(True, "Run one generate per host after the deploy.")
    ollama_smoke_every_run: bool = setting(
        False, "Also generate (smoke) and load a model (verify) on a run that finds Ollama's process, its models and "
               "the check settings as they were when the checks last passed; off, such a run loads no model, so "
               "what is loaded, and its keep-alive, stay.")
    ollama_smoke_model: str | None = setting(None, "Model for the smoke generate (default: the first model).")
    ollama_smoke_prompt: str = setting("Reply with one short sentence about the sea.", "Prompt for the smoke generate.")
    ollama_api_timeout: int = setting(60, "Seconds to wait for the API after a (re)start.", unit="seconds")
    ollama_model_parameters: ModelParameters = setting(
        {}, "Per-model parameters (num_ctx, num_thread, num_gpu, ...): each listed model gets a derived model "
            "'<name>:<tag>-tuned' created with these PARAMETERs, and the smoke test uses it.")
    ollama_registry_url: Url = setting(
        "https://registry.ollama.ai", "Registry the control node reads model metadata from for the memory budget.")
    ollama_check_memory_budget: bool = setting(True, "Refuse models whose weights + KV cache do not fit.")
    ollama_targets: dict[str, float] = setting(
        {"ttft_ms": 300, "tokens_per_s": 30, "concurrent_users": 10, "success_rate": 1.0},
        "Benchmark targets (seed 004): TTFT at most, tokens/s at least, concurrent users served, success rate.")

    # Checks that need no host facts; host-dependent ones are in ollama_deploy/lib/plan.py.
    @model_validator(mode="after")
    def _writable(self):
        return checks.writable(self)

    @model_validator(mode="after")
    def _exposure(self):
        return checks.exposure(self)

    @model_validator(mode="after")
    def _combinations(self):
        return checks.combinations(self)

def api_url(settings: OllamaSettings) -> str:
    """Where the deploy reaches Ollama on the host itself (0.0.0.0 becomes 127.0.0.1, as Ollama's client does)."""
    h = connectable_host(settings.ollama_host)
    return f"http://{h.hostport}"


def selected_models(settings: OllamaSettings) -> list[str]:
    """ollama_models then ollama_extra_models, each once, in order."""
    return list(dict.fromkeys(settings.ollama_models + settings.ollama_extra_models))


class SettingsError(ValueError):
    """Invalid settings; `problems` holds one line per problem: key, value, reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _nearest(key: str) -> str:
    close = difflib.get_close_matches(key.lower(), OllamaSettings.model_fields, n=1, cutoff=0.8)
    return f"; did you mean {close[0]}?" if close else ""


def misnamed_keys(data: dict[str, Any]) -> list[str]:
    """Host data keys that look like settings but are not read as one: another case
    (OLLAMA_KEEP_ALIVE), no `ollama_` prefix (keep_alive) or a misspelt one (olama_keep_alive)."""
    problems = []
    for key in data:
        if not isinstance(key, str) or key.startswith((PREFIX, SITE_REGISTRY_PREFIX)):
            continue
        bare = key.lower().removeprefix("ollama_").removeprefix("ollama")
        exact = PREFIX + bare if PREFIX + bare in OllamaSettings.model_fields else None
        near = exact or (difflib.get_close_matches(key.lower(), OllamaSettings.model_fields, n=1, cutoff=0.85)
                         or [""])[0]
        if near:
            problems.append(f"key {key}, value {data[key]!r}: not a setting (settings are lower case and start "
                            f"with {PREFIX}); did you mean {near}?")
    return problems


def resolve(data: dict[str, Any]) -> OllamaSettings:
    """Validate the `ollama_*` keys of a host's data (other keys belong to pyinfra or the inventory)."""
    ours = {k: v for k, v in data.items() if k.startswith(PREFIX)}
    try:
        return OllamaSettings(**ours)
    except ValidationError as e:
        raise SettingsError(validation_problems(e, ours)) from None


def validation_problems(e: ValidationError, values: dict[str, Any]) -> list[str]:
    """One line per problem: key, value, reason (a combination's message names its keys itself)."""
    lines = []
    for err in e.errors():
        key = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            reason = PLACEBOS.get(key) or "unknown setting" + _nearest(key)
        else:
            reason = err["msg"].removeprefix("Value error, ")
        lines.append(f"key {key}, value {values.get(key, '<missing>')!r}: {reason}" if err["loc"] else reason)
    return lines
