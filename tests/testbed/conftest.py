"""The default testbed (3 hosts, one per profile), booted once per session.

A testbed that was already up before the session (a developer's) is left running; one booted
here is removed at the end, so CI leaves no containers, mounts or namespaces behind.
"""
import os

import pytest
import testinfra

from testbed import core
from testbed.layout import Testbed


@pytest.fixture(scope="session")
def testbed():
    if os.geteuid() != 0:
        pytest.fail("the testbed needs root (systemd-nspawn, mount, ip netns)")
    tb = Testbed.named()
    was_up = (tb.state_dir / "state.json").exists()
    report = core.up(tb)
    yield tb, report
    if not was_up and not os.environ.get("TESTBED_KEEP"):
        assert core.down(tb) == []


@pytest.fixture(scope="session")
def hosts(testbed):
    tb, _ = testbed
    return {h.name: testinfra.get_host(f"paramiko://{h.name}", ssh_config=str(tb.ssh_config)) for h in tb.hosts}
