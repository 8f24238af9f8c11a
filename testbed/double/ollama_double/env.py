"""Server configuration read from the environment, as envconfig/config.go does.

``ServerEnv`` parses every variable once at start with the exact Go rules
(via ``goparse``) and renders ``envconfig.Values()`` for the
``server config`` journal line: only AsMap() keys, Go ``%v`` formatting,
keys sorted as Go prints a map.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ollama_deploy.gocompat import duration, envconfig, hostport, strconv

from . import gorules

# Source lines of the Uint / Uint64 warnings in envconfig/config.go (v0.32.15).
_SRC_UINT = "config.go:263"
_SRC_UINT64 = "config.go:292"
_SRC_PORT = "config.go:51"


def _home(environ) -> str:
    return environ.get("HOME") or os.path.expanduser("~")


class ServerEnv:
    """All of Ollama's server-side environment knobs, parsed once."""

    def __init__(self, environ=None):
        env = dict(os.environ if environ is None else environ)
        self.environ = env
        self.warnings: list[tuple[str, str, tuple]] = []  # (source, msg, attrs)
        var = lambda k: envconfig.ollama_var(env.get(k))  # noqa: E731
        self.var = var

        self.host = hostport.ollama_host(env.get("OLLAMA_HOST"))
        if self.host.port_invalid:
            raw_port = self._raw_port(env.get("OLLAMA_HOST"))
            self.warnings.append(
                (_SRC_PORT, "invalid port, using default", ("port", raw_port, "default", self.host.port))
            )
        self.log_level = envconfig.ollama_log_level(env.get("OLLAMA_DEBUG"))
        self.debug_log_requests = envconfig.ollama_bool(env.get("OLLAMA_DEBUG_LOG_REQUESTS"))
        self.go_template = envconfig.ollama_bool(env.get("OLLAMA_GO_TEMPLATE"), True)
        # Tri-state: FlashAttention(false) != FlashAttention(true) means "unset".
        fa_false = envconfig.ollama_bool(env.get("OLLAMA_FLASH_ATTENTION"), False)
        fa_true = envconfig.ollama_bool(env.get("OLLAMA_FLASH_ATTENTION"), True)
        self.flash_attention: bool | None = fa_false if fa_false == fa_true else None
        self.flash_attention_shown = fa_false
        self.kv_cache_type_raw = var("OLLAMA_KV_CACHE_TYPE")
        self.kv_cache_type = self.kv_cache_type_raw.lower()  # llm/server.go:118
        self.gpu_overhead = self._uint("OLLAMA_GPU_OVERHEAD", 0, _SRC_UINT64)
        self.igpu_enable_raw = var("OLLAMA_IGPU_ENABLE")
        self.keep_alive = envconfig.parse_keep_alive(env.get("OLLAMA_KEEP_ALIVE"))
        self.llm_library = var("OLLAMA_LLM_LIBRARY")
        self.load_timeout = envconfig.parse_load_timeout(env.get("OLLAMA_LOAD_TIMEOUT"))
        self.max_loaded_models = self._uint("OLLAMA_MAX_LOADED_MODELS", 0, _SRC_UINT)
        self.max_transfer_streams = self._uint("OLLAMA_MAX_TRANSFER_STREAMS", 4, _SRC_UINT)
        self.max_queue = self._uint("OLLAMA_MAX_QUEUE", 512, _SRC_UINT)
        self.models = var("OLLAMA_MODELS") or str(Path(_home(env)) / ".ollama" / "models")
        self.no_cloud = envconfig.ollama_bool(env.get("OLLAMA_NO_CLOUD")) or self._server_json_no_cloud()
        self.no_history = envconfig.ollama_bool(env.get("OLLAMA_NOHISTORY"))
        self.no_prune = envconfig.ollama_bool(env.get("OLLAMA_NOPRUNE"))
        self.num_parallel = self._uint("OLLAMA_NUM_PARALLEL", 1, _SRC_UINT)
        self.origins = self._origins()
        self.sched_spread = envconfig.ollama_bool(env.get("OLLAMA_SCHED_SPREAD"))
        self.context_length = self._uint("OLLAMA_CONTEXT_LENGTH", 0, _SRC_UINT)
        self.editor = var("OLLAMA_EDITOR")
        remotes = strconv.go_trim_space(var("OLLAMA_REMOTES"))
        self.remotes = remotes.split(",") if remotes else ["ollama.com"]
        self.vulkan = envconfig.ollama_bool(env.get("OLLAMA_VULKAN"), True)
        self.cuda_visible_devices = var("CUDA_VISIBLE_DEVICES")

    @staticmethod
    def _raw_port(raw) -> str:
        s = strconv.go_trim_space(envconfig.ollama_var(raw))
        hostport = s.split("://", 1)[1] if "://" in s else s
        hostport = hostport.partition("/")[0]
        try:
            return hostport.go_split_host_port(hostport)[1]
        except ValueError:
            return ""

    def _uint(self, key: str, default: int, source: str) -> int:
        s = self.var(key)
        if s == "":
            return default
        try:
            return strconv.go_parse_uint(s)
        except ValueError:
            self.warnings.append(
                (source, "invalid environment variable, using default", ("key", key, "value", s, "default", default))
            )
            return default

    def _origins(self) -> list[str]:
        s = self.var("OLLAMA_ORIGINS")
        origins = s.split(",") if s else []
        for o in ("localhost", "127.0.0.1", "0.0.0.0"):
            origins += [f"http://{o}", f"https://{o}", f"http://{o}:*", f"https://{o}:*"]
        return origins + ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]

    def _server_json_no_cloud(self) -> bool:
        try:
            data = json.loads((Path(_home(self.environ)) / ".ollama" / "server.json").read_text())
            return bool(data.get("disable_ollama_cloud"))
        except (OSError, ValueError, AttributeError):
            return False

    def values(self) -> dict[str, str]:
        """envconfig.Values(): AsMap() keys (Linux) with fmt %v of each value."""
        v = self.var
        fmt = lambda x: "true" if x is True else "false" if x is False else str(x)  # noqa: E731
        lst = lambda xs: "[" + " ".join(xs) + "]"  # noqa: E731
        out = {
            "OLLAMA_DEBUG": gorules.slog_level_name(self.log_level),
            "OLLAMA_DEBUG_LOG_REQUESTS": fmt(self.debug_log_requests),
            "OLLAMA_GO_TEMPLATE": fmt(self.go_template),
            "OLLAMA_FLASH_ATTENTION": fmt(self.flash_attention_shown),
            "OLLAMA_KV_CACHE_TYPE": self.kv_cache_type_raw,
            "OLLAMA_GPU_OVERHEAD": fmt(self.gpu_overhead),
            "OLLAMA_IGPU_ENABLE": self.igpu_enable_raw,
            "LLAMA_ARG_FIT": v("LLAMA_ARG_FIT"),
            "LLAMA_ARG_FIT_TARGET": v("LLAMA_ARG_FIT_TARGET"),
            "OLLAMA_HOST": self.host.url,
            "OLLAMA_KEEP_ALIVE": duration.go_format_duration(self.keep_alive),
            "OLLAMA_LLM_LIBRARY": self.llm_library,
            "OLLAMA_LOAD_TIMEOUT": duration.go_format_duration(self.load_timeout),
            "OLLAMA_MAX_LOADED_MODELS": fmt(self.max_loaded_models),
            "OLLAMA_MAX_TRANSFER_STREAMS": fmt(self.max_transfer_streams),
            "OLLAMA_MAX_QUEUE": fmt(self.max_queue),
            "OLLAMA_MODELS": self.models,
            "OLLAMA_NO_CLOUD": fmt(self.no_cloud),
            "OLLAMA_NOHISTORY": fmt(self.no_history),
            "OLLAMA_NOPRUNE": fmt(self.no_prune),
            "OLLAMA_NUM_PARALLEL": fmt(self.num_parallel),
            "OLLAMA_ORIGINS": lst(self.origins),
            "OLLAMA_SCHED_SPREAD": fmt(self.sched_spread),
            "OLLAMA_CONTEXT_LENGTH": fmt(self.context_length),
            "OLLAMA_EDITOR": self.editor,
            "OLLAMA_REMOTES": lst(self.remotes),
            "HTTP_PROXY": v("HTTP_PROXY"),
            "HTTPS_PROXY": v("HTTPS_PROXY"),
            "NO_PROXY": v("NO_PROXY"),
            "http_proxy": v("http_proxy"),
            "https_proxy": v("https_proxy"),
            "no_proxy": v("no_proxy"),
            "CUDA_VISIBLE_DEVICES": self.cuda_visible_devices,
            "HIP_VISIBLE_DEVICES": v("HIP_VISIBLE_DEVICES"),
            "ROCR_VISIBLE_DEVICES": v("ROCR_VISIBLE_DEVICES"),
            "GGML_VK_VISIBLE_DEVICES": v("GGML_VK_VISIBLE_DEVICES"),
            "GPU_DEVICE_ORDINAL": v("GPU_DEVICE_ORDINAL"),
            "HSA_OVERRIDE_GFX_VERSION": v("HSA_OVERRIDE_GFX_VERSION"),
            "OLLAMA_VULKAN": fmt(self.vulkan),
        }
        return out

    def values_map_string(self) -> str:
        """The ``map[K:V ...]`` text Go prints for Values() (sorted keys)."""
        vals = self.values()
        return "map[" + " ".join(f"{k}:{vals[k]}" for k in sorted(vals)) + "]"
