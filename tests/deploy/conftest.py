"""A testbed of its own for deploy tests (3 hosts, one per profile), fresh for the session.

Bad-input tests run first on the bare hosts (they must change nothing); the converge tests follow."""
import os

import pytest

from testbed import core
from testbed.deployrun import run_deploy
from testbed.layout import Testbed


@pytest.fixture(scope="session")
def deploy_testbed():
    if os.geteuid() != 0:
        pytest.fail("the testbed needs root")
    tb = Testbed.named(os.environ.get("TESTBED_DEPLOY_NAME", "tbdeploy"), hosts=3)  # another name runs beside CI
    core.down(tb)  # fresh hosts: a converge test must start from bare machines
    core.up(tb)
    yield tb
    if not os.environ.get("TESTBED_KEEP"):
        core.down(tb)


@pytest.fixture(scope="session")
def first_run(deploy_testbed):
    """The first deploy to the bare hosts (the converge tests check it; later tests start converged)."""
    return run_deploy(deploy_testbed.inventory_path)
