"""Hosts as they come: a bare Debian 12 (systemd and sshd, nothing else the deploy uses) and a
Debian 13 host, each on a one-host testbed of its own running real Ollama. The deploy installs
what it needs from the host's own package sources (through the testbed's apt proxy), converges,
the testinfra suite passes, and a second run changes nothing."""
import subprocess
import sys

import pytest

from testbed import core
from testbed.deployrun import PROJECT_ROOT, run_deploy
from testbed.layout import Testbed
from tests.deploy.hosts import ssh


@pytest.fixture(params=["bare", "trixie"])
def plain_host(request):
    tb = Testbed.named(f"tb{request.param[:6]}", hosts=1, base=request.param)
    core.down(tb)
    core.up(tb)
    yield tb
    core.down(tb)


def test_a_bare_or_debian_13_host_gets_what_the_deploy_needs_and_converges(plain_host):
    tb, host = plain_host, plain_host.hosts[0].name
    release = ssh(tb, host, ". /etc/os-release; echo $VERSION_CODENAME; for t in curl zstd update-ca-certificates; "
                            "do command -v $t || echo no-$t; done").stdout.split()
    assert release == [{"bare": "bookworm", "trixie": "trixie"}[tb.base], "no-curl", "no-zstd",
                       "no-update-ca-certificates"]  # the base hands the deploy nothing
    run = run_deploy(tb.inventory_path)
    assert run.rc == 0, run.stderr[-3000:]
    assert any(name.startswith("Install Ollama | Tools the install needs: curl, ca-certificates, zstd")
               for name, _ in run.changed_ops()), run.changed_ops()
    suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/testinfra",
                            "--inventory", str(tb.inventory_path)], capture_output=True, text=True,
                           cwd=PROJECT_ROOT, timeout=300)
    assert suite.returncode == 0 and " failed" not in suite.stdout, suite.stdout[-3000:]
    again = run_deploy(tb.inventory_path)
    assert again.rc == 0 and again.changed_ops() == [], again.changed_ops()
