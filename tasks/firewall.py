"""Admit only the allowlisted client networks to Ollama's API when it listens beyond loopback.

Ollama's API has no authentication. A host that exposes it gets an nftables table (loaded by
ollama-firewall.service, which ollama.service then requires); a host that stops exposing it
loses both. Every host runs the same operations, so pyinfra's order holds across hosts.

Example (deploy.py):
    changed = firewall()
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, systemd
from pyinfra.operations.util import any_changed

from ollama_deploy.lib.checks import listens_on_loopback
from ollama_deploy.lib.operations import files_content
from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.settings import api_url
from ollama_deploy.tasks.configure import render

RULES = "/etc/ollama-deploy/firewall.nft"
UNIT = "ollama-firewall.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"


def rules_text(networks: list[str], port: int) -> str:
    nets = [ipaddress.ip_network(n, strict=False) for n in networks]
    return render("firewall.nft.j2", port=port, ipv4=[str(n) for n in nets if n.version == 4],
                  ipv6=[str(n) for n in nets if n.version == 6])


@deploy("Firewall")
def firewall():
    settings = plan_for(host).settings
    exposed = not listens_on_loopback(settings.ollama_host)
    port = urlsplit(api_url(settings)).port or 11434
    if exposed:
        apt.packages(name="nftables", packages=["nftables"])
    # Stop and disable before the files go, when exposure is switched off.
    systemd.service(name="Firewall off", service=UNIT, running=False, enabled=False,
                    _if=lambda: not exposed and bool(host.get_fact(File, path=UNIT_PATH)))
    rules = files_content(name="Firewall rules and unit", files={
        RULES: rules_text(settings.ollama_allowed_networks, port) if exposed else None,
        UNIT_PATH: render("ollama-firewall.service.j2") if exposed else None})
    systemd.service(name="Firewall on", service=UNIT, running=True, enabled=True, restarted=True,
                    daemon_reload=True, _if=[lambda: exposed, any_changed(rules)])
    return [rules]
