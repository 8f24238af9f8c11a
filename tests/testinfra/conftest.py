"""Hosts and their intended state, both read from a pyinfra inventory (with group_data), so the
suite checks real hosts against the same source of truth the deploy used.
"""
import os
from dataclasses import dataclass

import pytest
import testinfra

from ollama_deploy.facts.hardware import HardwareFact
from ollama_deploy.lib.hardware import parse_hardware
from ollama_deploy.lib.inventory_data import load_host_data
from ollama_deploy.lib.plan import hardware_of, settings_from
from ollama_deploy.lib.settings import OllamaSettings


@dataclass
class Target:
    name: str
    data: dict
    settings: OllamaSettings
    host: "testinfra.host.Host"


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        path = metafunc.config.getoption("--inventory")
        if not os.path.isfile(path):
            raise pytest.UsageError(f"--inventory {path}: no such inventory file")
        hosts = load_host_data(path)
        if not hosts:
            raise pytest.UsageError(f"--inventory {path}: the inventory lists no hosts")
        metafunc.parametrize("target", hosts, ids=[name for name, _ in hosts], indirect=True, scope="module")


@pytest.fixture(scope="module")
def target(request):
    name, data = request.param
    spec = f"paramiko://{data.get('ssh_hostname') or name}"
    ssh_config = data.get("ssh_config_file") or os.path.expanduser("~/.ssh/config")
    host = testinfra.get_host(spec, ssh_config=ssh_config if os.path.exists(ssh_config) else None)
    # The same facts and derivation the deploy used: the host's data over what its hardware implies.
    detected = parse_hardware(host.check_output(HardwareFact().command()).splitlines())
    return Target(name, data, settings_from(hardware_of(detected, data), data), host)


def pytest_collection_modifyitems(config, items):
    """test_uninstalled.py checks hosts after uninstall.py (--uninstalled), the other modules after deploy.py."""
    absent = config.getoption("--uninstalled")
    keep = [item for item in items if (item.module.__name__.endswith("test_uninstalled")) == absent]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
