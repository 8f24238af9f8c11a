"""Bad settings stop the run before any host changes, with one line per host naming key, value, reason."""
import subprocess

import pytest

from testbed.deployrun import run_deploy


def _fingerprint(tb):
    """Everything the deploy could touch first: unit, drop-ins, binary marker, service pid."""
    cmd = ("stat -c '%n %Y %s' /etc/systemd/system/ollama.service /etc/systemd/system/ollama.service.d/* "
           "/usr/local/lib/ollama/.ollama-deploy-release 2>/dev/null; systemctl show -p MainPID --value ollama")
    return {h.name: subprocess.run(["ssh", "-F", str(tb.ssh_config), h.name, cmd], capture_output=True,
                                   text=True, timeout=30).stdout for h in tb.hosts}


@pytest.mark.parametrize("data, key, value, reason", [
    ("ollama_keep_alvie=1h", "ollama_keep_alvie", "'1h'", "unknown setting"),
    ("ollama_num_parallel=four", "ollama_num_parallel", "'four'", "valid integer"),
    ("ollama_kv_cache_type=q9_9", "ollama_kv_cache_type", "'q9_9'", "'f16', 'q8_0' or 'q4_0'"),
])
def test_bad_setting_fails_before_any_change(deploy_testbed, data, key, value, reason):
    before = _fingerprint(deploy_testbed)
    run = run_deploy(deploy_testbed.inventory_path, "--data", data)
    assert run.rc != 0
    lines = [line for line in run.stderr.splitlines() if line.strip().startswith("host ")]
    assert sorted(line.split(":")[0].strip() for line in lines) == sorted(f"host {h.name}" for h in deploy_testbed.hosts)
    for line in lines:
        assert f"key {key}, value {value}: " in line and reason in line
    assert _fingerprint(deploy_testbed) == before
