"""The systemd drop-ins the deploy writes in ollama.service.d/, from a host's settings.

Each setting's declaration (``ollama_deploy.lib.settings``) names its drop-in file and its target: an
environment variable or a [Service] directive. This module only lays those lines out.

Example:
    dropins(resolve({"ollama_keep_alive": "1h"}))["performance.conf"]
    # [DropinLine('Environment', 'OLLAMA_KEEP_ALIVE=1h', 'How long ...'), ...]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ollama_deploy.lib.checks import declared
from ollama_deploy.lib.settings import DEFAULT_MODELS_DIR, OllamaSettings

DROPIN_DIR = "/etc/systemd/system/ollama.service.d"
# Every drop-in this tool may write: one that a host no longer needs is removed.
DROPIN_FILES = ("performance.conf", "10-gpu.conf", "resources.conf", "listen.conf", "models-path.conf")


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
        meta = declared(field)
        value = getattr(settings, key)
        if not meta.get("dropin") or value is None:
            continue
        if key == "ollama_models_dir" and value == DEFAULT_MODELS_DIR:
            continue
        if meta["env"]:
            line = DropinLine("Environment", f"{meta['env']}={_format(value)}", field.description or "")
        else:
            line = DropinLine(meta["directive"], _format(value), field.description or "")
        files.setdefault(meta["dropin"], []).append(line)
    return files
