"""Check every host's settings against its hardware before any host is touched; one line per problem.

Called first in deploy.py: deploy code runs for every host before pyinfra executes anything,
and a DeployError raised there stops the whole run before pyinfra executes any operation. The deploy file runs once per host,
all at once, so the fleet is checked once, by the first of them, every host in parallel (a fleet of
N hosts costs one fact round trip, not N); the others wait for that answer.
"""
from __future__ import annotations

import threading

import gevent.pool
from pyinfra import inventory
from pyinfra.api import DeployError

from ollama_deploy.lib.plan import plan_for
from ollama_deploy.lib.settings import SettingsError
from ollama_deploy.lib.site_registry_settings import GROUP as SITE_REGISTRY_GROUP

_problems: list[str] | None = None  # what the fleet check found; None until it has run
_CHECKING = threading.Lock()  # gevent-aware: pyinfra's CLI monkey-patches threading


def _host_problems(target) -> list[str]:
    try:
        plan_for(target)
    except SettingsError as e:
        return [f"host {target.name}: {p}" for p in e.problems]
    return []


def validate_inventory() -> None:
    global _problems
    with _CHECKING:
        if _problems is None:
            # The hosts this run deploys to: a host that could not connect is already failed and listed
            # by pyinfra, and one outside --limit is not touched; checking them would abort the run.
            active = set(inventory.get_active_hosts())
            targets = [target for target in inventory if target in active and SITE_REGISTRY_GROUP not in target.groups]
            # imap keeps inventory order
            _problems = [p for found in gevent.pool.Pool(32).imap(_host_problems, targets) for p in found]
    if _problems:
        raise DeployError("invalid settings, nothing was changed:\n" + "\n".join(_problems))
