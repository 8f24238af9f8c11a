"""uninstall.py removes what the deploy installed, keeps the models and the account unless asked,
changes nothing the second time; the testinfra suite (--uninstalled) asserts the absence."""
import subprocess
import sys

from testbed.deployrun import PROJECT_ROOT, run_deploy
from tests.deploy.hosts import inventory_with, ssh


def _testinfra_absent(inventory, host) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/testinfra",
                           "--inventory", str(inventory), "--uninstalled", "-k", host],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)


def test_uninstall_keeps_models_and_account_then_removes_them_when_asked(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    try:
        gone = run_deploy(tb.inventory_path, "--limit", host, deploy_file="uninstall.py")
        assert gone.rc == 0, gone.stderr[-3000:]
        checked = _testinfra_absent(tb.inventory_path, host)
        assert checked.returncode == 0 and "3 passed" in checked.stdout, checked.stdout[-3000:]
        assert ssh(tb, host, "ls /usr/share/ollama/.ollama/models/manifests").returncode == 0  # models kept
        again = run_deploy(tb.inventory_path, "--limit", host, deploy_file="uninstall.py")
        assert again.rc == 0 and again.changed_ops() == [], again.changed_ops()

        everything = inventory_with(tb, tmp_path, host, ollama_uninstall_models=True, ollama_uninstall_account=True)
        purged = run_deploy(everything, "--limit", host, deploy_file="uninstall.py")
        assert purged.rc == 0, purged.stderr[-3000:]
        checked = _testinfra_absent(everything, host)
        assert checked.returncode == 0 and "3 passed" in checked.stdout, checked.stdout[-3000:]
        assert ssh(tb, host, "id ollama").returncode != 0
    finally:
        back = run_deploy(tb.inventory_path, "--limit", host)
    assert back.rc == 0, back.stderr[-3000:]


def test_removing_the_account_but_not_the_models_under_its_home_is_refused(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    run = run_deploy(inventory_with(tb, tmp_path, host, ollama_uninstall_account=True), "--limit", host,
                     deploy_file="uninstall.py")
    assert run.rc != 0 and "key ollama_uninstall_account, value True: the account's home" in run.stderr
    assert "Traceback" not in run.stderr
    assert ssh(tb, host, "systemctl is-active ollama").stdout.strip() == "active"  # nothing was touched
