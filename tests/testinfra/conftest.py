"""Hosts and their intended state, both read from a pyinfra inventory (with group_data), so the
suite checks real hosts against the same source of truth the deploy used.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from tasks.settings import OllamaSettings, resolve

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    name: str
    data: dict
    settings: OllamaSettings
    host: "testinfra.host.Host"


def _targets(inventory_path: str) -> list[tuple[str, dict]]:
    cwd = os.getcwd()
    os.chdir(PROJECT_ROOT)  # group_data/ is found relative to the working directory, as for the CLI
    try:
        with ctx_state.use(State()):  # pyinfra's loader records the file it executes on the state
            inventory = make_inventory(inventory_path, cwd=str(PROJECT_ROOT))
    finally:
        os.chdir(cwd)
    return [(h.name, h.data.dict()) for h in inventory]


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        hosts = _targets(metafunc.config.getoption("--inventory"))
        metafunc.parametrize("target", hosts, ids=[name for name, _ in hosts], indirect=True, scope="module")


@pytest.fixture(scope="module")
def target(request):
    name, data = request.param
    spec = f"paramiko://{data.get('ssh_hostname') or name}"
    ssh_config = data.get("ssh_config_file") or os.path.expanduser("~/.ssh/config")
    host = testinfra.get_host(spec, ssh_config=ssh_config if os.path.exists(ssh_config) else None)
    return Target(name, data, resolve(data), host)
