"""Install Ollama like the official installer does, but pinned and checksum-verified.

Example (deploy.py):
    changed = install_ollama()      # OperationMetas whose change means "restart needed"
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Groups
from pyinfra.operations import files, server

from .hostinfo import machine_arch
from .operations import release_installed
from .release import artifact_for
from .settings import resolve

OLLAMA_HOME = "/usr/share/ollama"


@deploy("Install Ollama")
def install_ollama():
    settings = resolve(host.data.dict())
    artifact = artifact_for(settings, machine_arch(host))
    server.group(name="Group ollama", group="ollama", system=True)
    # GPU device nodes belong to render/video; Ollama needs them, where the groups exist.
    gpu_groups = [g for g in ("render", "video") if g in host.get_fact(Groups)]
    server.user(name="User ollama", user="ollama", group="ollama", groups=gpu_groups, append=True,
                system=True, home=OLLAMA_HOME, shell="/bin/false", ensure_home=True)
    binary = release_installed(name=f"Ollama release {settings.ollama_version}",
                               url=artifact.url, sha256=artifact.sha256, prefix=settings.ollama_prefix)
    unit = files.template(name="Unit ollama.service", src="templates/ollama.service.j2",
                          dest="/etc/systemd/system/ollama.service", mode="644", user="root", group="root",
                          prefix=settings.ollama_prefix)
    return [binary, unit]
