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

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PREFIX = "ollama_"
DROPIN_DIR = "/etc/systemd/system/ollama.service.d"
# Every drop-in this tool may write: one that a host no longer needs is removed.
DROPIN_FILES = ("performance.conf", "10-gpu.conf", "resources.conf", "models-path.conf")
DEFAULT_MODELS_DIR = "/usr/share/ollama/.ollama/models"  # Ollama's default under the ollama user's HOME


def setting(default: Any, description: str, *, dropin: str | None = None, env: str | None = None,
            directive: str | None = None, ollama_reads: bool | None = None) -> Any:
    """Declare a setting. `env` is an environment variable set in `dropin`, `directive` a [Service] line.
    `ollama_reads` records whether Ollama itself reads the variable (reference §2b); False means it
    only reaches the CUDA runtime / llama-server through the inherited environment."""
    return Field(default, description=description,
                 json_schema_extra={"dropin": dropin, "env": env, "directive": directive,
                                    "ollama_reads": ollama_reads})


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

    # performance.conf
    ollama_flash_attention: bool | None = setting(
        None, "Flash attention; unset lets llama.cpp decide per model and device (auto).",
        dropin="performance.conf", env="OLLAMA_FLASH_ATTENTION", ollama_reads=True)
    ollama_keep_alive: str | None = setting(
        None, "How long an idle model stays loaded (Go duration such as 30m, or seconds; negative = forever).",
        dropin="performance.conf", env="OLLAMA_KEEP_ALIVE", ollama_reads=True)
    ollama_context_length: int | None = setting(
        None, "Default context length per request (0 = Ollama's VRAM-based default).",
        dropin="performance.conf", env="OLLAMA_CONTEXT_LENGTH", ollama_reads=True)
    ollama_num_parallel: int | None = setting(
        None, "Parallel requests per loaded model; each gets its own context.",
        dropin="performance.conf", env="OLLAMA_NUM_PARALLEL", ollama_reads=True)
    ollama_max_loaded_models: int | None = setting(
        None, "Models kept loaded at once (0 = 3 per GPU).",
        dropin="performance.conf", env="OLLAMA_MAX_LOADED_MODELS", ollama_reads=True)
    ollama_max_queue: int | None = setting(
        None, "Requests waiting before the server answers 503 busy.",
        dropin="performance.conf", env="OLLAMA_MAX_QUEUE", ollama_reads=True)
    ollama_kv_cache_type: Literal["f16", "q8_0", "q4_0"] | None = setting(
        None, "KV cache type; quantized types need flash attention or the model fails to load.",
        dropin="performance.conf", env="OLLAMA_KV_CACHE_TYPE", ollama_reads=True)

    # 10-gpu.conf
    ollama_cuda_visible_devices: str | None = setting(
        None, "GPUs Ollama may use, by index (in CUDA_DEVICE_ORDER) or UUID, comma-separated.",
        dropin="10-gpu.conf", env="CUDA_VISIBLE_DEVICES", ollama_reads=True)
    ollama_cuda_device_order: Literal["PCI_BUS_ID", "FASTEST_FIRST"] | None = setting(
        None, "CUDA device numbering; PCI_BUS_ID matches nvidia-smi's order.",
        dropin="10-gpu.conf", env="CUDA_DEVICE_ORDER", ollama_reads=False)
    ollama_sched_spread: bool | None = setting(
        None, "Split every model across all GPUs instead of fitting it on one.",
        dropin="10-gpu.conf", env="OLLAMA_SCHED_SPREAD", ollama_reads=True)
    ollama_gpu_overhead: int | None = setting(
        None, "Bytes of VRAM per GPU to leave unused.",
        dropin="10-gpu.conf", env="OLLAMA_GPU_OVERHEAD", ollama_reads=True)

    # resources.conf
    ollama_cpu_quota: str | None = setting(
        None, "systemd CPUQuota, e.g. 2000% for 20 CPUs' worth of time.", dropin="resources.conf", directive="CPUQuota")
    ollama_cpu_weight: int | None = setting(
        None, "systemd CPUWeight (1-10000, default 100).", dropin="resources.conf", directive="CPUWeight")
    ollama_memory_max: str | None = setting(
        None, "systemd MemoryMax, e.g. 20G (K, M, G, T suffixes).", dropin="resources.conf", directive="MemoryMax")

    # models-path.conf
    ollama_models_dir: str = setting(
        DEFAULT_MODELS_DIR, "Where models are stored; a drop-in is written only when not the default.",
        dropin="models-path.conf", env="OLLAMA_MODELS", ollama_reads=True)

    # Models and smoke test
    ollama_models: list[str] = setting([], "Models to pull (name[:tag]); present ones are skipped.")
    ollama_extra_models: list[str] = setting(
        [], "More models for one host, added to ollama_models (so a host need not repeat its group's list).")
    ollama_prune_models: bool = setting(False, "Remove models that are not listed.")
    ollama_run_smoke: bool = setting(True, "Run one generate per host after the deploy.")
    ollama_smoke_model: str | None = setting(None, "Model for the smoke generate (default: the first model).")
    ollama_smoke_prompt: str = setting("Reply with one short sentence about the sea.", "Prompt for the smoke generate.")
    ollama_api_timeout: int = setting(60, "Seconds to wait for the API after a (re)start.")


def selected_models(settings: OllamaSettings) -> list[str]:
    """ollama_models then ollama_extra_models, each once, in order."""
    return list(dict.fromkeys(settings.ollama_models + settings.ollama_extra_models))


class SettingsError(ValueError):
    """Invalid settings; `problems` holds one line per problem: key, value, reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


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
            reason = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"key {key}, value {value!r}: {reason}")
        raise SettingsError(lines) from None


@dataclass(frozen=True)
class DropinLine:
    directive: str  # "Environment" or a [Service] directive such as CPUQuota
    value: str
    description: str

    @property
    def text(self) -> str:
        # Quoted so values with spaces survive; systemd strips the quotes.
        return f'{self.directive}="{self.value}"' if self.directive == "Environment" else f"{self.directive}={self.value}"


def _format(value: Any) -> str:
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
