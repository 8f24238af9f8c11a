"""The deploy on real systemd hosts: converge, verify with testinfra, no-op rerun, per-host change."""
import json
import subprocess
import sys

import pytest

from testbed.layout import PROJECT_ROOT
from testbed.deployrun import run_deploy


def main_pids(tb):
    out = {}
    for h in tb.hosts:
        p = subprocess.run(["ssh", "-F", str(tb.ssh_config), h.name, "systemctl show -p MainPID --value ollama"],
                           capture_output=True, text=True, timeout=30)
        out[h.name] = int(p.stdout.strip() or 0)
    return out


@pytest.fixture(scope="module")
def first_run(deploy_testbed):
    return run_deploy(deploy_testbed.inventory_path)


def test_fresh_deploy_converges_every_host(deploy_testbed, first_run):
    assert first_run.rc == 0, first_run.stderr[-3000:]
    assert first_run.results["failed_hosts"] == []
    for h in deploy_testbed.hosts:
        assert first_run.changed_ops(h.name), f"{h.name} changed nothing on a fresh host"
        smoke = json.loads((PROJECT_ROOT / "reports/smoke" / f"{h.name}.json").read_text())
        assert smoke["tokens_per_s"] > 0 and smoke["ttft_ms"] > 0 and smoke["eval_count"] > 0


def test_testinfra_suite_passes_on_every_host(deploy_testbed, first_run):
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/testinfra",
                        "--inventory", str(deploy_testbed.inventory_path)],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:]
    assert " passed" in p.stdout and " failed" not in p.stdout


def test_second_run_changes_nothing_and_restarts_nothing(deploy_testbed, first_run):
    before = main_pids(deploy_testbed)
    again = run_deploy(deploy_testbed.inventory_path)
    assert again.rc == 0, again.stderr[-3000:]
    assert again.changed_ops() == []
    assert main_pids(deploy_testbed) == before


def test_one_host_override_changes_and_restarts_only_that_host(deploy_testbed, first_run, tmp_path):
    target = next(h for h in deploy_testbed.hosts if h.profile == "dual_gpu")
    # A copy of the inventory with one per-host override, as an operator would edit it.
    inventory = tmp_path / "override.py"
    inventory.write_text(
        f"exec(open({str(deploy_testbed.inventory_path)!r}).read())\n"
        f"dual_gpu = [(name, {{**data, 'ollama_keep_alive': '2h'}}) if name == {target.name!r} else (name, data)"
        f" for name, data in dual_gpu]\n")
    before = main_pids(deploy_testbed)
    run = run_deploy(inventory)
    assert run.rc == 0, run.stderr[-3000:]
    changed_hosts = {h for _, h in run.changed_ops()}
    assert changed_hosts == {target.name}
    after = main_pids(deploy_testbed)
    assert after[target.name] != before[target.name]
    assert {n: p for n, p in after.items() if n != target.name} == {n: p for n, p in before.items() if n != target.name}
    conf = subprocess.run(["ssh", "-F", str(deploy_testbed.ssh_config), target.name,
                           "cat /etc/systemd/system/ollama.service.d/performance.conf"],
                          capture_output=True, text=True).stdout
    assert 'Environment="OLLAMA_KEEP_ALIVE=2h"' in conf
