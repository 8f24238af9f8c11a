"""Custom pyinfra facts about Ollama on a host. Each tolerates Ollama being absent or down
(the command exits 0 and prints nothing), because a fact command that fails fails the host.

Example:
    host.get_fact(InstalledRelease, prefix="/usr/local")   # "3f1c…" or None
    host.get_fact(OllamaModels, api="http://127.0.0.1:11434")   # {"testbed/tiny:latest", ...}
"""
from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase, FactProcessError

from ollama_deploy.gocompat.names import canonical_model

RELEASE_MARKER = "lib/ollama/.ollama-deploy-release"  # holds the sha256 of the installed artifact


class InstalledRelease(FactBase[str | None]):
    """sha256 of the release artifact installed under `prefix` by this tool, or None."""

    def command(self, prefix):
        return f"cat {prefix}/{RELEASE_MARKER} 2>/dev/null || true"

    def process(self, output):
        return output[0].strip() or None if output else None


class OllamaVersion(FactBase[str | None]):
    """Version the running server reports on /api/version, or None when it does not answer."""

    def requires_command(self, api):
        return "curl"

    def command(self, api):
        return f"curl -fsS --max-time 2 {api}/api/version 2>/dev/null || true"

    def process(self, output):
        try:
            return json.loads("\n".join(output))["version"]
        except (ValueError, KeyError, TypeError) as e:
            raise FactProcessError(f"unexpected /api/version reply: {e}") from e


class OllamaModels(FactBase[dict]):
    """Models the server lists on /api/tags: canonical name -> manifest digest ("sha256:..."); empty
    when the server is down."""

    @staticmethod
    def default():
        return {}

    def requires_command(self, api):
        return "curl"

    def command(self, api):
        return f"curl -fsS --max-time 5 {api}/api/tags 2>/dev/null || true"

    def process(self, output):
        try:
            return {canonical_model(m["name"]): "sha256:" + str(m.get("digest", "")).removeprefix("sha256:")
                    for m in json.loads("\n".join(output)).get("models") or []}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise FactProcessError(f"unexpected /api/tags reply: {e}") from e


def parse_show_parameters(text: str) -> dict[str, list[str]]:
    """/api/show's `parameters` text ('num_ctx    8192' lines; a key may repeat, e.g. stop) as lists."""
    params: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            params.setdefault(key, []).append(value.strip().strip('"'))
    return params


class OllamaModelParameters(FactBase[dict | None]):
    """The PARAMETERs of `model` as /api/show reports them ({name: [values]}), or None if absent."""

    def requires_command(self, api, model):
        return "curl"

    def command(self, api, model):
        body = json.dumps({"model": model})
        return f"curl -fsS --max-time 5 {api}/api/show -d '{body}' 2>/dev/null || true"

    def process(self, output):
        try:
            return parse_show_parameters(json.loads("\n".join(output)).get("parameters") or "")
        except (ValueError, AttributeError) as e:
            raise FactProcessError(f"unexpected /api/show reply: {e}") from e


class UnitState(FactBase[dict]):
    """A systemd unit's state in one round trip (pyinfra's systemd facts list every unit):
    {"active": "active", "enabled": "enabled", "main_pid": 1234}. "enabled" comes from
    `systemctl is-enabled`, which reads the disk: `show`'s UnitFileState is what systemd saw at its
    last daemon-reload, so a unit enabled with --no-reload would read as disabled until the next."""

    @staticmethod
    def default():
        return {"active": "inactive", "enabled": "not-found", "main_pid": 0}

    def command(self, unit):
        unit = shlex.quote(unit)
        return (f"systemctl show {unit} -p ActiveState -p MainPID 2>/dev/null; "
                f"echo UnitFileState=$(systemctl is-enabled {unit} 2>/dev/null)")

    def process(self, output):
        state = self.default()
        for line in output:
            key, _, value = line.partition("=")
            if key == "ActiveState":
                state["active"] = value
            elif key == "UnitFileState":
                state["enabled"] = value or "not-found"
            elif key == "MainPID" and value.isdigit():
                state["main_pid"] = int(value)
        return state


class PathStates(FactBase[dict]):
    """For each of `paths` that exists, in one round trip: {path: (sha256 or "dir", "user:group:mode")}.
    Lets an operation compare many files and directories with what it wants at the cost of one command."""

    @staticmethod
    def default():
        return {}

    def command(self, paths):
        quoted = " ".join(shlex.quote(p) for p in paths)
        return (f"for p in {quoted}; do if [ -d \"$p\" ]; then d=dir; elif [ -f \"$p\" ]; then "
                "d=$(sha256sum < \"$p\" | cut -d' ' -f1); else continue; fi; "
                "echo \"$d $(stat -c %U:%G:%a \"$p\") $p\"; done")

    def process(self, output):
        states = {}
        for line in output:
            digest, owner, path = line.split(" ", 2)
            states[path] = (digest, owner)
        return states


class UserGroups(FactBase[set | None]):
    """The groups `user` belongs to (`id -Gn`), or None when there is no such user."""

    def command(self, user):
        return f"id -Gn {shlex.quote(user)} 2>/dev/null || true"

    def process(self, output):
        return set(" ".join(output).split()) or None


BLOBS_VERIFIED = ".ollama-deploy-verified"  # in the models dir: "<blob> <size>:<mtime>:<inode>" per line


class BlobStates(FactBase[dict]):
    """For each blob in `names` under `models_dir`/blobs that exists: {name: (sha256, "user:group:mode")}.
    A blob whose size, mtime and inode match the line the last seeding wrote for it is not hashed
    again (rsync's quick check), so a re-run does not read every model end to end; any write to a
    blob changes its mtime and gets it hashed."""

    @staticmethod
    def default():
        return {}

    def command(self, models_dir, names):
        quoted = " ".join(shlex.quote(n) for n in names)
        return (f"cd {shlex.quote(models_dir)} 2>/dev/null || exit 0; for n in {quoted}; do p=blobs/$n; "
                "[ -f \"$p\" ] || continue; if grep -qxF \"$n $(stat -c %s:%.9Y:%i \"$p\")\" "
                f"{BLOBS_VERIFIED} 2>/dev/null; then d=${{n#sha256-}}; else d=$(sha256sum < \"$p\" | cut -d' ' -f1); fi; "
                "echo \"$n $d $(stat -c %U:%G:%a \"$p\")\"; done")

    def process(self, output):
        return {name: (digest, owner) for name, digest, owner in (line.split(" ", 2) for line in output)}
