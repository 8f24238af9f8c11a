"""What else configures ollama.service on a host: unit files and drop-ins this tool did not write.

Example:
    directives, kept_models_dir = host.get_fact(ForeignConfig)
    # [Directive('/etc/systemd/system/ollama.service.d/10-gpu.conf', 'Environment', 'OLLAMA_LLM_LIBRARY=cuda'), …]
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from pyinfra.api import FactBase

UNIT = "/etc/systemd/system/ollama.service"


SEARCHED = (UNIT, "/etc/systemd/system/ollama.service.d/*.conf", "/run/systemd/system/ollama.service.d/*.conf",
            "/usr/lib/systemd/system/ollama.service.d/*.conf")


ADOPTED = "/var/lib/ollama-deploy/adopted.json"


MARKER = "managed by ollama-deploy"


ENV_FILE = " (EnvironmentFile)"


@dataclass(frozen=True)
class Directive:
    path: str        # the file; an EnvironmentFile's path ends in ENV_FILE
    directive: str   # "Environment" (one per assignment), "EnvironmentFile", "ExecStart", ...
    value: str

    def __str__(self):
        return f"file {self.path}, {self.directive}={self.value}"


def _assignments(value: str) -> list[str]:
    """Environment= takes several space-separated assignments, each optionally quoted."""
    try:
        return shlex.split(value)
    except ValueError:
        return [value]


def parse(output: list[str]) -> list[Directive]:
    """`==> path` blocks of unit files and EnvironmentFiles -> their [Service] directives."""
    found, path, section = [], "", ""
    for raw in output:
        line = raw.strip()
        if raw.startswith("==> "):
            path, section = raw[4:], ("[Service]" if raw.endswith(ENV_FILE) else "")
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]" or "=" not in line:
            continue
        if path.endswith(ENV_FILE):
            found.append(Directive(path, "Environment", "".join(_assignments(line)) or line))
            continue
        key, value = (x.strip() for x in line.split("=", 1))
        for item in _assignments(value) if key == "Environment" else [value]:
            found.append(Directive(path, key, item))
    return found


class ForeignConfig(FactBase[tuple]):
    """(the [Service] directives of ollama.service's unit and drop-ins that this tool did not write,
    the models directory an earlier take-over kept or None), in one round trip."""

    @staticmethod
    def default():
        return [], None

    def command(self):
        return ("for f in " + " ".join(SEARCHED) + "; do [ -f \"$f\" ] || continue; "
                f"head -n1 \"$f\" | grep -qi '{MARKER}' && continue; echo \"==> $f\"; cat \"$f\"; echo; "
                "for e in $(sed -n 's/^EnvironmentFile=-\\{0,1\\}//p' \"$f\"); do [ -f \"$e\" ] && "
                f"{{ echo \"==> $e{ENV_FILE}\"; cat \"$e\"; echo; }}; done; done; "
                f"echo '==> {ADOPTED}'; cat {ADOPTED} 2>/dev/null; true")

    def process(self, output):
        cut = output.index(f"==> {ADOPTED}") if f"==> {ADOPTED}" in output else len(output)
        try:
            kept = json.loads("\n".join(output[cut + 1:]) or "null")["models_dir"]
        except (ValueError, TypeError, KeyError):
            kept = None
        return parse(output[:cut]), kept
