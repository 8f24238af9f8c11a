"""Shared options, and the markers that name each layer of tests (see pyproject.toml).

`--inventory` selects the hosts for the testinfra suite (tests/testinfra/), which is collected only
when it is given:

    pytest tests/testinfra --inventory inventory/prod.py
    pytest tests/testinfra --inventory inventory/prod.py --uninstalled     # after uninstall.py
"""
from pathlib import Path


def pytest_addoption(parser):
    parser.addoption("--inventory", default=None,
                     help="pyinfra inventory whose hosts the testinfra suite checks (enables tests/testinfra)")
    parser.addoption("--uninstalled", action="store_true",
                     help="tests/testinfra: check that uninstall.py left nothing behind, instead of the deploy's state")


def pytest_ignore_collect(collection_path: Path, config):
    if "testinfra" in collection_path.parts and config.getoption("--inventory") is None:
        return True
    return None


LAYERS = {"unit": "unit", "double": "double", "conformance": "conformance",
          "deploy": "testbed", "testbed": "testbed", "testinfra": "testbed"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if folder in LAYERS:
            item.add_marker(LAYERS[folder])
