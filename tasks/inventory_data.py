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

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def load_host_data(inventory_path: str, cwd: Path = PROJECT_ROOT, override_data: dict | None = None):
    previous = os.getcwd()
    os.chdir(cwd)  # group_data/ is found relative to the working directory, as for the CLI
    try:
        with ctx_state.use(State()):  # pyinfra's loader records the file it executes on the state
            inventory = make_inventory(str(inventory_path), override_data=override_data, cwd=str(cwd))
    finally:
        os.chdir(previous)
    return [(h.name, h.data.dict()) for h in inventory]
