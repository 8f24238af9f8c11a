"""Hosts tuned by hand or set up by another installer: what else configures ollama.service there.

At plan time `ForeignConfig` reads every unit file and drop-in of ollama.service this tool did not
write (ours start with a "managed by ollama-deploy" line), and the EnvironmentFiles they name.
`verdicts()` judges each directive: never read by Ollama, harmful (and what it does), overridden by
ours, or harmless. The plan refuses such a host, one line per directive, unless `ollama_adopt` is
set; then `taken_over()` moves the files into a dated backup on the host, keeps the models directory
they set (recorded in ADOPTED, so later runs keep it too), and the deploy writes its own.

Example (deploy code):
    foreign, kept_models_dir = host.get_fact(ForeignConfig)   # [Directive(path, 'Environment', 'OLLAMA_X=1')]
    lines = verdicts(foreign, settings, check)                # ["file ..., Environment=OLLAMA_X=1: never read ..."]
"""
from __future__ import annotations

import json
import shlex
from pathlib import PurePosixPath

from pyinfra.api import StringCommand, operation

from ollama_deploy.facts.foreign import ADOPTED, ENV_FILE, UNIT, Directive
from ollama_deploy.lib.checks import declared
from ollama_deploy.lib.dropins import dropins
from ollama_deploy.lib.ollama_env import logged_form, side
from ollama_deploy.lib.settings import PLACEBOS, OllamaSettings

BACKUPS = "/var/lib/ollama-deploy/adopted"
# [Service] lines of a foreign unit that ours replaces outright.
REPLACED = {"ExecStart", "ExecStartPre", "ExecStartPost", "User", "Group", "Restart", "RestartSec", "Type",
            "WorkingDirectory", "DynamicUser", "SupplementaryGroups"}


def foreign_models_dir(foreign: list[Directive]) -> str | None:
    """The OLLAMA_MODELS the foreign configuration gives Ollama (systemd's last assignment wins)."""
    dirs = [d.value.split("=", 1)[1] for d in _in_systemd_order(foreign)
            if d.directive == "Environment" and d.value.startswith("OLLAMA_MODELS=")]
    return dirs[-1] if dirs else None


def _in_systemd_order(foreign: list[Directive]) -> list[Directive]:
    """The unit first, then drop-ins by file name (systemd applies them in that order)."""
    def key(d):
        return (d.path != UNIT, PurePosixPath(d.path.removesuffix(ENV_FILE)).name if d.path != UNIT else "")
    return sorted(foreign, key=key)


def _ours_by_env(settings: OllamaSettings) -> dict[str, tuple[str, str]]:
    """Variable -> (our value, our drop-in file)."""
    return {line.value.split("=", 1)[0]: (line.value.split("=", 1)[1], name)
            for name, lines in dropins(settings).items() for line in lines if line.directive == "Environment"}


def _same(name: str, a: str, b: str) -> bool:
    """The same value once Ollama has parsed it ("1" and "true" for a Bool, "3600" and "1h" for a duration)."""
    try:
        return logged_form(name, a).lower() == logged_form(name, b).lower()
    except ValueError:
        return a == b


def _env_verdict(d: Directive, check, keys: dict[str, str], ours: dict[str, tuple[str, str]]) -> str:
    name, _, value = d.value.partition("=")
    if name == "OLLAMA_MODELS":
        return f"harmless: the models directory; kept on take-over (becomes ollama_models_dir={value!r})"
    if name.startswith("OLLAMA_") and not side(name):
        hint = PLACEBOS.get("ollama_" + name[7:].lower(), "")
        return "never read by Ollama" + (f": {hint.split('; ', 1)[-1]}" if hint else "")
    if side(name) == "client":
        return "never read by the server: only the ollama command-line client reads it"
    if name not in keys:
        return "harmless: not a variable this tool manages; dropped on take-over"
    problems = check(keys[name], value)
    if problems:
        return f"harmful: {problems[0]}"
    if name not in ours:
        return f"harmless: this host's plan leaves {keys[name]} unset; dropped on take-over unless you set it"
    mine, file_name = ours[name]
    if _same(name, mine, value):
        return "harmless: the same as ours"
    later = d.path != UNIT and PurePosixPath(d.path.removesuffix(ENV_FILE)).name > file_name
    return (f"harmful: overrides ours ({name}={mine} in {file_name}), systemd reads this file later" if later
            else f"overridden by ours ({name}={mine} in {file_name})")


def verdicts(foreign: list[Directive], settings: OllamaSettings, check) -> list[str]:
    """One line per foreign directive. `check(key, raw)` lists what is wrong with a setting's value."""
    keys = {declared(f)["env"]: k for k, f in OllamaSettings.model_fields.items() if declared(f).get("env")}
    lines, ours = [], _ours_by_env(settings)
    for d in _in_systemd_order(foreign):
        if d.directive == "Environment":
            verdict = _env_verdict(d, check, keys, ours)
        elif d.directive == "EnvironmentFile":
            verdict = "harmless: its variables are judged below; no longer read after take-over (the file stays)"
        elif d.directive in REPLACED or d.path == UNIT:
            verdict = "overridden by ours: this tool's pinned, sandboxed unit replaces it"
        else:
            verdict = "harmful: changes the unit's sandbox or resources outside this tool's settings"
        lines.append(f"{d}: {verdict}")
    return lines


@operation()
def taken_over(foreign: list, models_dir: str, stamp: str):
    """
    Move the foreign unit files into BACKUPS/<stamp>/ (paths kept) and record the models directory.

    **Example:**

    .. code:: python

        taken_over(name="Take over the hand-made configuration", foreign=foreign,
                   models_dir="/srv/models", stamp="20261203T1840Z")
    """
    files = sorted({d.path for d in foreign if not d.path.endswith(ENV_FILE)})
    if not files:
        return
    backup = f"{BACKUPS}/{stamp}"
    record = json.dumps({"models_dir": models_dir, "backup": backup, "files": files})
    script = f"set -e; mkdir -p {BACKUPS}; " + "; ".join(
        f"mkdir -p {shlex.quote(backup + str(PurePosixPath(f).parent))} && mv {shlex.quote(f)} "
        f"{shlex.quote(backup + f)}" for f in files) + f"; printf '%s\\n' {shlex.quote(record)} > {ADOPTED}"
    yield StringCommand("sh", "-c", shlex.quote(script))
