"""Each host's merged data, loaded by pyinfra's own inventory loader (group_data included), for
tools that check hosts outside a pyinfra run: the testinfra suite, tests of data precedence.

Example:
    load_host_data("inventory/prod.py")   # [("gpu-box", {"ollama_keep_alive": "1h", ...}), ...]
"""
from __future__ import annotations

import os
from pathlib import Path

from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from ollama_deploy.lib.profiles import profile_settings


def load_host_data(inventory_path: str, cwd: Path | None = None, override_data: dict | None = None):
    """``cwd``: the deploy's directory, holding group_data/ (default: the working directory, as for the CLI)."""
    cwd = cwd or Path.cwd()
    previous = os.getcwd()
    os.chdir(cwd)  # group_data/ is found relative to the working directory, as for the CLI
    try:
        with ctx_state.use(State()):  # pyinfra's loader records the file it executes on the state
            inventory = make_inventory(str(inventory_path), override_data=override_data, cwd=str(cwd))
    finally:
        os.chdir(previous)
    # The profile's values under every data layer, as plan_for layers them.
    return [(h.name, {**profile_settings(h.groups), **h.data.dict()}) for h in inventory]
