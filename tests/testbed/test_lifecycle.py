"""A host that fails to boot is reported in one line; `down` leaves nothing behind.

Uses its own one-host testbed, so the default one is not disturbed."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import core
from testbed.layout import PROJECT_ROOT, Testbed


def _cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "testbed", "--name", "tbfail", *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=timeout)


@pytest.fixture
def failing_testbed():
    if os.geteuid() != 0:
        pytest.fail("the testbed needs root")
    tb = Testbed.named("tbfail", hosts=1)
    yield tb
    core.down(tb)


def test_boot_failure_is_one_clear_line_and_down_cleans_up(failing_testbed):
    tb = failing_testbed
    host = tb.hosts[0]
    first = _cli("up", "--hosts", "1")
    assert first.returncode == 0, first.stderr
    assert _cli("stop", host.name).returncode == 0
    # Break the host as an operator might: sshd masked. The next boot must fail, named and logged.
    unit = host.upper / "etc/systemd/system/ssh.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.symlink_to("/dev/null")
    broken = _cli("up", "--hosts", "1", "--boot-timeout", "6")
    assert broken.returncode == 1
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 1, broken.stderr
    assert host.name in lines[0] and "sshd did not answer" in lines[0]
    log_path = lines[0].rsplit("log: ", 1)[1]
    assert log_path == str(host.console_log) and os.path.getsize(log_path) > 0

    down = _cli("down")
    assert down.returncode == 0, down.stderr
    assert core.leftovers(tb) == []
    # Checked again with the system's own tools, independent of the testbed's bookkeeping.
    assert f"{tb.name}-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "link", "show", tb.bridge], capture_output=True).returncode != 0
    assert f" {tb.state_dir}/" not in open("/proc/self/mounts").read()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/ollama-testbed/{tb.name}-*"))
    assert f"--machine={tb.name}-" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
