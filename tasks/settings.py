"""Every deploy setting, declared once: type, default, drop-in, target, description, whether Ollama reads it.

Host data keys starting with `ollama_` are settings. Their values come from group_data/all.py,
then the profile's group file, then per-host inventory data, then `--data` (pyinfra's own
precedence). `resolve(host.data.dict())` validates them and returns an `OllamaSettings`.
`dropins(settings)` turns that into the systemd drop-in files the deploy writes.

Example:
    s = resolve({"ollama_keep_alive": "1h", "ollama_flash_attention": True})
    dropins(s)["performance.conf"]   # [DropinLine('Environment', 'OLLAMA_FLASH_ATTENTION=true', ...), ...]
"""
from __future__ import annotations

import difflib
import ipaddress
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .facts import canonical_model, model_name_problem
from .goparse import OPTION_KINDS, connectable_host, format_params, go_parse_duration, go_parse_int, ollama_host

PREFIX = "ollama_"
# The cache types llama.cpp b10488 takes (common/arg.cpp kv_cache_types; Ollama passes the value
# through lower-cased), and those it stores in 32-element blocks, which need flash attention for V.
KV_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
QUANTIZED_KV = ("q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
LLAMA_MAX_SEQ = 256  # llama.cpp b10488 src/llama-cparams.h: the most parallel sequences a context takes
# Keys operators bring from the seeds: Ollama 0.32.15 never reads these variables (reference §3).
PLACEBOS = {
    "ollama_num_threads": "OLLAMA_NUM_THREADS is never read by Ollama; threads are the per-model parameter "
                          "num_thread: ollama_model_parameters = {'<model>': {'num_thread': N}}",
    "ollama_num_gpu_layers": "OLLAMA_NUM_GPU_LAYERS is never read by Ollama; GPU layers are the per-model "
                             "parameter num_gpu: ollama_model_parameters = {'<model>': {'num_gpu': N}}",
    "ollama_no_cuda": "OLLAMA_NO_CUDA is never read by Ollama; to keep GPUs away set "
                      "ollama_cuda_visible_devices='-1', or per model num_gpu 0",
    **{f"ollama_{v}": f"{v.upper()} is never read by Ollama (llama-server uses its own thread pool); use "
                      "the per-model parameter num_thread in ollama_model_parameters"
       for v in ("omp_num_threads", "mkl_num_threads", "openblas_num_threads", "veclib_maximum_threads")},
}
DROPIN_DIR = "/etc/systemd/system/ollama.service.d"
# Every drop-in this tool may write: one that a host no longer needs is removed.
DROPIN_FILES = ("performance.conf", "10-gpu.conf", "resources.conf", "listen.conf", "models-path.conf")
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
    ollama_version: str = setting("0.32.15", "Ollama release to install (pinned).")
    ollama_release_base_url: str = setting(
        "https://github.com/ollama/ollama/releases/download",
        "Where releases live: <base>/v<version>/ollama-linux-<arch>.tar.zst (a mirror for air-gapped sites).")
    ollama_release_sha256: dict[str, str] = setting(
        {}, "Pinned sha256 per artifact file name; files not listed are checked against the release's sha256sum.txt.")
    ollama_release_local_dir: str | None = setting(
        None, "Air-gapped sites: a directory on the control node laid out like the release base "
              "(v<version>/ollama-linux-<arch>.tar.zst and sha256sum.txt); the artifact is uploaded over SSH.")
    ollama_prefix: str = setting("/usr/local", "Install prefix: <prefix>/bin/ollama and <prefix>/lib/ollama/.")
    ollama_fleet_cache: bool = setting(
        False, "Fetch each release artifact and model once on the control node (verified) and seed hosts from "
               "it over SSH, instead of each host downloading them.")
    ollama_fleet_cache_dir: str = setting("~/.cache/ollama-deploy", "The control node's fleet cache.")
    ollama_models_local_dir: str | None = setting(
        None, "Air-gapped sites: a directory on the control node in Ollama's models layout (manifests/, blobs/), "
              "such as a connected machine's ~/.ollama/models; models are verified and seeded from it over SSH "
              "(implies ollama_fleet_cache).")

    # performance.conf
    ollama_flash_attention: bool | None = setting(
        None, "Flash attention; unset lets llama.cpp decide per model and device (auto).",
        dropin="performance.conf", env="OLLAMA_FLASH_ATTENTION")
    ollama_keep_alive: str | int | None = setting(
        None, "How long an idle model stays loaded (Go duration such as 30m, or seconds; negative = forever).",
        dropin="performance.conf", env="OLLAMA_KEEP_ALIVE", unit="duration")
    ollama_context_length: int | None = setting(
        None, "Default context length per request (0 = Ollama's VRAM-based default).",
        dropin="performance.conf", env="OLLAMA_CONTEXT_LENGTH", unit="tokens")
    ollama_num_parallel: int | None = setting(
        None, "Parallel requests per loaded model (1-256); each gets its own context.",
        dropin="performance.conf", env="OLLAMA_NUM_PARALLEL")
    ollama_max_loaded_models: int | None = setting(
        None, "Models kept loaded at once (0 = 3 per GPU).",
        dropin="performance.conf", env="OLLAMA_MAX_LOADED_MODELS")
    ollama_max_queue: int | None = setting(
        None, "Requests waiting before the server answers 503 busy.",
        dropin="performance.conf", env="OLLAMA_MAX_QUEUE")
    ollama_kv_cache_type: Literal[KV_CACHE_TYPES] | None = setting(
        None, "KV cache type (llama.cpp's f16 when unset); the block types (q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1) "
              "need flash attention and a head size of a multiple of 32, or the model fails to load.",
        dropin="performance.conf", env="OLLAMA_KV_CACHE_TYPE")

    # 10-gpu.conf
    ollama_cuda_visible_devices: str | None = setting(
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
    ollama_llm_library: str | None = setting(
        None, "Restrict GPU discovery to one library directory under lib/ollama (cuda_v12, cuda_v13, vulkan, ...).",
        dropin="10-gpu.conf", env="OLLAMA_LLM_LIBRARY")
    ollama_gpu_overhead: int | None = setting(
        None, "Bytes per GPU that Ollama subtracts when it picks the VRAM-tiered default context (and shows "
              "in its gpu memory log line); it reserves nothing when placing models.",
        dropin="10-gpu.conf", env="OLLAMA_GPU_OVERHEAD", unit="bytes")

    # resources.conf
    ollama_cpu_quota: str | None = setting(
        None, "systemd CPUQuota, e.g. 2000% for 20 CPUs' worth of time (derived: threads less 1/6 for the OS).",
        dropin="resources.conf", directive="CPUQuota", unit="percent")
    ollama_cpu_weight: int | None = setting(
        None, "systemd CPUWeight (1-10000, default 100).", dropin="resources.conf", directive="CPUWeight")
    ollama_memory_max: str | None = setting(
        None, "systemd MemoryMax, e.g. 20G (derived on CPU hosts: 5/8 of RAM).",
        dropin="resources.conf", directive="MemoryMax", unit="bytes, K/M/G/T suffix (1024-based)")

    # listen.conf and the firewall: Ollama's API has no authentication, so it stays on loopback
    # unless an allowlist of client networks comes with the address.
    ollama_host: str | None = setting(
        None, "Address Ollama listens on ([scheme://]host[:port]); unset is 127.0.0.1:11434. A non-loopback "
              "address needs ollama_allowed_networks.", dropin="listen.conf", env="OLLAMA_HOST")
    ollama_allowed_networks: list[str] = setting(
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
    ollama_watch_interval: str = setting("5min", "How often ollama-check runs (a systemd time span).")
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
    ollama_models_dir: str = setting(
        DEFAULT_MODELS_DIR, "Where models are stored; a drop-in is written only when not the default.",
        dropin="models-path.conf", env="OLLAMA_MODELS")

    # Models and smoke test
    ollama_models: list[str] = setting([], "Models to pull (name[:tag]); present ones are skipped.")
    ollama_extra_models: list[str] = setting(
        [], "More models for one host, added to ollama_models (so a host need not repeat its group's list).")
    ollama_prune_models: bool = setting(False, "Remove models that are not listed.")
    ollama_run_smoke: bool = setting(True, "Run one generate per host after the deploy.")
    ollama_smoke_model: str | None = setting(None, "Model for the smoke generate (default: the first model).")
    ollama_smoke_prompt: str = setting("Reply with one short sentence about the sea.", "Prompt for the smoke generate.")
    ollama_api_timeout: int = setting(60, "Seconds to wait for the API after a (re)start.", unit="seconds")
    ollama_model_parameters: dict[str, dict[str, Any]] = setting(
        {}, "Per-model parameters (num_ctx, num_thread, num_gpu, ...): each listed model gets a derived model "
            "'<name>:<tag>-tuned' created with these PARAMETERs, and the smoke test uses it.")
    ollama_registry_url: str = setting(
        "https://registry.ollama.ai", "Registry the control node reads model metadata from for the memory budget.")
    ollama_check_memory_budget: bool = setting(True, "Refuse models whose weights + KV cache do not fit.")
    ollama_targets: dict[str, float] = setting(
        {"ttft_ms": 300, "tokens_per_s": 30, "concurrent_users": 10, "success_rate": 1.0},
        "Benchmark targets (seed 004): TTFT at most, tokens/s at least, concurrent users served, success rate.")

    # Checks that need no host facts; host-dependent ones are in tasks/plan.py.
    @field_validator("ollama_keep_alive", mode="before")
    @classmethod
    def _keep_alive_as_ollama_parses(cls, v):
        if v is None or (isinstance(v, int) and not isinstance(v, bool)):
            return v  # whole seconds
        for parse in (go_parse_duration, go_parse_int):
            try:
                parse(v.strip().strip("\"'"))
                return v
            except (ValueError, AttributeError):  # AttributeError: not a string (e.g. 1.5 from --data)
                pass
        raise ValueError("Ollama reads neither a Go duration nor whole seconds from it and silently keeps 5m; "
                         "write e.g. 30m, 1h30m or 1800")

    @field_validator("ollama_context_length", "ollama_max_loaded_models", "ollama_max_queue", "ollama_gpu_overhead")
    @classmethod
    def _unsigned(cls, v):
        if v is not None and v < 0:
            raise ValueError("Ollama parses it as an unsigned integer: a negative value is ignored (default used)")
        return v

    @field_validator("ollama_num_parallel")
    @classmethod
    def _parallel(cls, v):
        if v is not None and v < 1:
            raise ValueError("at least 1 (Ollama treats 0 as 1)")
        if v is not None and v > LLAMA_MAX_SEQ:
            # Ollama passes it to llama-server as -np; llama.cpp refuses more sequences and every model
            # then fails to load ("n_seq_max must be <= 256", measured on real 0.32.15).
            raise ValueError(f"at most {LLAMA_MAX_SEQ} (llama.cpp's LLAMA_MAX_SEQ): more and no model loads")
        return v

    @field_validator("ollama_cpu_quota")
    @classmethod
    def _cpu_quota(cls, v):
        if v is not None and (not re.fullmatch(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?%", v) or float(v[:-1]) == 0):
            raise ValueError("systemd CPUQuota takes a percentage of one CPU above 0, with at most two decimals, "
                             "e.g. 2000% for 20 CPUs or 12.5%")
        return v

    @field_validator("ollama_cpu_weight")
    @classmethod
    def _cpu_weight(cls, v):
        if v is not None and not 1 <= v <= 10000:
            raise ValueError("systemd CPUWeight is 1-10000")
        return v

    @field_validator("ollama_memory_max")
    @classmethod
    def _memory_max(cls, v):
        if v is None or v == "infinity" or re.fullmatch(r"[1-9][0-9]*(\.[0-9]+)?[KMGTPE]?|[1-9][0-9]*(\.[0-9]{1,2})?%",
                                                        v) and not (v.endswith("%") and float(v[:-1]) > 100):
            return v
        m = re.fullmatch(r"([0-9.]+)\s*([KMGTPE])i?B", v, re.I)
        hint = f"; did you mean {m.group(1)}{m.group(2).upper()}?" if m else ""
        raise ValueError("systemd MemoryMax takes bytes with an optional 1024-based K, M, G, T, P or E suffix "
                         f"(e.g. 20G, 1.5G), a percentage of RAM up to 100% (e.g. 60%), or infinity{hint}")

    @field_validator("ollama_cuda_visible_devices")
    @classmethod
    def _visible_devices(cls, v):
        if v is None:
            return v
        tokens = [t.strip() for t in v.split(",")]
        if v.strip() != "-1" and not all(re.fullmatch(r"[0-9]+|GPU-[0-9a-fA-F-]+", t) for t in tokens):
            raise ValueError("comma-separated GPU indices or GPU-<uuid> values, or -1 for none")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a GPU is listed twice")
        return v

    @field_validator("ollama_llm_library")
    @classmethod
    def _llm_library(cls, v):
        if v is not None and not re.fullmatch(r"cuda_v1[23]|cuda_jetpack[56]|vulkan|rocm_v[0-9_]+|mlx_cuda_v13", v):
            raise ValueError("not a library directory under lib/ollama: Ollama would skip every GPU library and "
                             "run on the CPU (cpu variants are picked automatically since 0.5.8); use cuda_v12, "
                             "cuda_v13 or vulkan, or leave it unset")
        return v

    @field_validator("ollama_watch_interval")
    @classmethod
    def _timespan(cls, v):
        units = r"(us|usec|ms|msec|s|sec|seconds?|m|min|minutes?|h|hr|hours?|d|days?|w|weeks?)"
        if not re.fullmatch(rf"([1-9][0-9]*{units} ?)+", v.strip()) or v != v.strip():
            raise ValueError("a systemd time span such as 5min, 30s or 1h 30min")
        return v

    @field_validator("ollama_prefix", "ollama_models_dir")
    @classmethod
    def _path(cls, v):
        # Written into the unit (ExecStart, ReadWritePaths) and tmpfiles.d lines, whose fields end at
        # whitespace and where % starts a specifier: only plain absolute paths.
        if not v.startswith("/") or posixpath.normpath(v) != v or v == "/":
            example = posixpath.normpath("/" + v.lstrip("/"))
            raise ValueError(f"an absolute, normalised path other than / (e.g. {example!r})")
        bad = sorted({c for c in v if not (c.isalnum() or c in "/._-+@:")})
        if bad:
            raise ValueError(f"{''.join(bad)!r} in a path written into systemd and tmpfiles.d lines; use letters, "
                             "digits and / . _ - + @ : only")
        return v

    @field_validator("ollama_release_base_url", "ollama_registry_url")
    @classmethod
    def _no_credentials_in_urls(cls, v):
        if "@" in v.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError("credentials in a URL end up in logs and inventories; put a token in the control "
                             "node's environment as OLLAMA_DEPLOY_MIRROR_TOKEN")
        return v

    @field_validator("ollama_version")
    @classmethod
    def _version(cls, v):
        if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?", v):
            raise ValueError("a release version such as 0.32.15")
        return v

    @field_validator("ollama_release_sha256")
    @classmethod
    def _sha256(cls, v):
        for name, digest in v.items():
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError(f"{name}: a sha256 is 64 hex digits")
        return v

    @field_validator("ollama_models", "ollama_extra_models")
    @classmethod
    def _model_names(cls, v):
        seen = {}
        for name in v:
            problem = model_name_problem(name)
            if problem:
                raise ValueError(f"model {name!r}: {problem}")
            key = canonical_model(name)
            if key in seen:
                raise ValueError(f"model {name!r} is listed twice (as {seen[key]!r})")
            seen[key] = name
        return v

    @field_validator("ollama_model_parameters")
    @classmethod
    def _parameters(cls, v):
        for model, params in v.items():
            try:
                format_params({k: val if isinstance(val, list) else [str(val)] for k, val in params.items()})
            except ValueError as e:
                raise ValueError(f"{model}: {e} (known: {', '.join(sorted(OPTION_KINDS))})") from None
        return v

    @field_validator("ollama_host")
    @classmethod
    def _host(cls, v):
        if v is None:
            return v
        parsed = ollama_host(v)
        if parsed.port_invalid:
            raise ValueError("Ollama cannot parse the port and would silently listen on 11434")
        if int(parsed.port) == 0:
            raise ValueError("port 0 makes Ollama listen on a random port that no client knows")
        if int(parsed.port) < 1024:
            # http:// or https:// without a port means 80 or 443 (envconfig.Host).
            raise ValueError(f"port {parsed.port} is below 1024 and the unit grants no capabilities "
                             "(CAP_NET_BIND_SERVICE), so Ollama could not bind it and would crash-loop; "
                             "use a port from 1024 (default 11434)")
        return v

    @field_validator("ollama_allowed_networks")
    @classmethod
    def _networks(cls, v):
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (CIDR such as 10.0.0.0/24)") from None
        return v

    @model_validator(mode="after")
    def _writable(self):
        """A value that lands in a drop-in may hold any printable character (it is quoted and escaped
        for systemd), but no control character: systemd would end or mangle the line."""
        for key, field in type(self).model_fields.items():
            value = getattr(self, key)
            if not (field.json_schema_extra or {}).get("dropin") or value is None:
                continue
            for item in value if isinstance(value, list) else [value]:
                bad = [c for c in str(item) if ord(c) < 32 or ord(c) == 127]
                if bad:
                    raise ValueError(f"key {key}, value {value!r}: control character {bad[0]!r} cannot be written "
                                     f"into {field.json_schema_extra['dropin']}")
        return self

    @model_validator(mode="after")
    def _exposure(self):
        exposed = not listens_on_loopback(self.ollama_host)
        if exposed and not self.ollama_allowed_networks:
            raise ValueError(f"key ollama_host, value {self.ollama_host!r}: the API has no authentication; "
                             "listening beyond loopback needs ollama_allowed_networks (the client networks to admit)")
        if not exposed and self.ollama_allowed_networks:
            raise ValueError(f"key ollama_allowed_networks, value {self.ollama_allowed_networks!r}: does nothing "
                             "while Ollama listens on loopback (set ollama_host)")
        if "*" in (self.ollama_origins or []) and not self.ollama_allow_any_origin:
            raise ValueError(f"key ollama_origins, value {self.ollama_origins!r}: '*' lets any web page call the "
                             "API; set ollama_allow_any_origin=true if that is really meant")
        return self

    @model_validator(mode="after")
    def _combinations(self):
        if self.ollama_kv_cache_type in QUANTIZED_KV and self.ollama_flash_attention is False:
            raise ValueError(f"key ollama_kv_cache_type, value {self.ollama_kv_cache_type!r}: with "
                             "ollama_flash_attention=False llama.cpp refuses a quantized V cache without flash "
                             "attention, so every model load fails; enable flash attention or use f16")
        models = {canonical_model(m) for m in self.ollama_models + self.ollama_extra_models}
        for model in self.ollama_model_parameters:
            if canonical_model(model) not in models:
                raise ValueError(f"key ollama_model_parameters, value {self.ollama_model_parameters!r}: names "
                                 f"{model!r}, which is not in ollama_models")
        return self


def listens_on_loopback(raw: str | None) -> bool:
    """Whether OLLAMA_HOST (as Ollama parses it) binds only loopback; "" and 0.0.0.0 bind everything."""
    host = ollama_host(raw).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or "": all interfaces or a resolved address


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
        if key.startswith(PREFIX) or not isinstance(key, str):
            continue
        bare = key.lower().removeprefix("ollama_").removeprefix("ollama")
        exact = PREFIX + bare if PREFIX + bare in OllamaSettings.model_fields else None
        near = exact or (difflib.get_close_matches(key.lower(), OllamaSettings.model_fields, n=1, cutoff=0.85)
                         or [None])[0]
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
        lines = []
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            value = ours.get(key, "<missing>")
            if err["type"] == "extra_forbidden":
                reason = PLACEBOS.get(key) or "unknown setting" + _nearest(key)
            else:
                reason = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a combination of settings: the message names the keys
                lines.append(reason)
                continue
            lines.append(f"key {key}, value {value!r}: {reason}")
        raise SettingsError(lines) from None


@dataclass(frozen=True)
class DropinLine:
    directive: str  # "Environment" or a [Service] directive such as CPUQuota
    value: str
    description: str

    @property
    def text(self) -> str:
        if self.directive != "Environment":
            return f"{self.directive}={self.value}"
        # Quoted so spaces survive, with systemd's escapes inside the quotes: backslash and quote, and
        # %% for a literal % (Environment= expands specifiers).
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
        return f'Environment="{escaped}"'


def _format(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)  # OLLAMA_ORIGINS is a comma list
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def dropins(settings: OllamaSettings) -> dict[str, list[DropinLine]]:
    """Lines per drop-in file, in declaration order; files with no lines are absent (to be removed)."""
    files: dict[str, list[DropinLine]] = {}
    for key, field in OllamaSettings.model_fields.items():
        meta = field.json_schema_extra or {}
        value = getattr(settings, key)
        if not meta.get("dropin") or value is None:
            continue
        if key == "ollama_models_dir" and value == DEFAULT_MODELS_DIR:
            continue
        if meta["env"]:
            line = DropinLine("Environment", f"{meta['env']}={_format(value)}", field.description)
        else:
            line = DropinLine(meta["directive"], _format(value), field.description)
        files.setdefault(meta["dropin"], []).append(line)
    return files
