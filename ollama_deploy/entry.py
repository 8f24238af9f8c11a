"""The deploys another pyinfra project calls: converge, verify, uninstall, and the site registry.

Example (an outside project's deploy.py, run as ``pyinfra -y inventory.py deploy.py``)::

    from ollama_deploy import deploy_ollama

    deploy_ollama(profile="cpu_xeon", settings={"ollama_models": ["qwen2.5:0.5b"]})

``settings`` are defaults for every host of the run: any host or group data of the same name, and
``--data``, win (pyinfra's own rule for a deploy's data defaults). ``profile`` serves hosts that are in
no profile group (cpu_xeon, dual_gpu, dgx_spark); a host in one keeps its group's.
"""
from __future__ import annotations

from typing import Any

from pyinfra import host, inventory
from pyinfra.api import DeployError, deploy

from ollama_deploy.control.summary import failures_summarised_at_exit
from ollama_deploy.control.tunnel import connections_without_nagle
from ollama_deploy.lib import plan
from ollama_deploy.lib.profiles import PROFILES
from ollama_deploy.lib.site_registry_settings import GROUP as SITE_REGISTRY_GROUP
from ollama_deploy.tasks.converge import converge
from ollama_deploy.tasks.site_registry import site_registry
from ollama_deploy.tasks.uninstall import uninstall_ollama as remove_ollama
from ollama_deploy.tasks.verify import verify_host

# pyinfra prefixes every operation name with these ("Ollama | Install Ollama | Unit ollama.service").
DEPLOY_NAMES = ("Ollama", "Verify Ollama", "Uninstall Ollama", "Site registry")


def _use_call(settings: dict[str, Any] | None, profile: str | None) -> None:
    """Record this call's settings and profile for the fleet check, which reads them for every host."""
    call = {"settings": dict(settings or {}), "profile": profile}
    if profile is not None and profile not in PROFILES:
        raise DeployError(f"host {host.name}: key profile, value {profile!r}: not one of {', '.join(PROFILES)}")
    if plan.CALL.get("set") and {k: plan.CALL[k] for k in call} != call:
        raise DeployError(f"host {host.name}: deploy_ollama was called with other settings than for the hosts "
                          "before it; put values that differ per host in host data")
    plan.CALL.update(call, set=True)
    connections_without_nagle(inventory)  # before the first fact: every command is a small request
    failures_summarised_at_exit()


@deploy(DEPLOY_NAMES[0])
def deploy_ollama(settings: dict[str, Any] | None = None, profile: str | None = None) -> None:
    """Install, configure, start, load models into and verify Ollama: the repository's deploy.py."""
    if SITE_REGISTRY_GROUP in host.groups:  # deploy_site_registry's hosts
        return
    _use_call(settings, profile)
    converge()


@deploy(DEPLOY_NAMES[1])
def verify_ollama(settings: dict[str, Any] | None = None, profile: str | None = None) -> None:
    """Check that each setting took effect, changing nothing."""
    if SITE_REGISTRY_GROUP in host.groups:  # deploy_site_registry's hosts
        return
    _use_call(settings, profile)
    # No fleet validation: verify must report a host whose hardware no longer matches its profile
    # (a GPU host fallen back to CPU) instead of refusing it.
    verify_host()


@deploy(DEPLOY_NAMES[2])
def uninstall_ollama(settings: dict[str, Any] | None = None, profile: str | None = None) -> None:
    """Remove what the deploy installed; models and the account stay unless settings say otherwise."""
    if SITE_REGISTRY_GROUP in host.groups:  # deploy_site_registry's hosts
        return
    _use_call(settings, profile)
    remove_ollama()


@deploy(DEPLOY_NAMES[3])
def deploy_site_registry() -> None:
    """The site registry on the inventory's site_registry hosts (nothing on the others); call it before
    deploy_ollama, whose hosts then pull from it (their data: ollama_site_registry)."""
    site_registry()
