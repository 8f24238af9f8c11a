"""Check every host's settings against its hardware before any host is touched; one line per problem.

Called first in deploy.py: deploy code runs for every host before pyinfra executes anything,
and a DeployError there stops the whole run (pyinfra-idioms §7).
"""
from __future__ import annotations

from pyinfra import inventory
from pyinfra.api import DeployError

from .plan import plan_for
from .settings import SettingsError


def validate_inventory() -> None:
    problems = []
    for target in inventory:
        try:
            plan_for(target)
        except SettingsError as e:
            problems += [f"host {target.name}: {p}" for p in e.problems]
    if problems:
        raise DeployError("invalid settings, nothing was changed:\n" + "\n".join(problems))
