"""ollama_watch: the check timer reports a healthy host, a drifted drop-in and a GPU host fallen back
to the CPU; with ollama_watch_heal it brings the GPUs back once. Metrics for node_exporter."""
import re
import subprocess
import sys

from testbed.deployrun import PROJECT_ROOT, run_deploy
from tests.deploy.hosts import inventory_with, ssh

PROM = "/var/lib/prometheus/node-exporter/ollama_check.prom"


def _check(tb, host) -> dict[str, str]:
    ran = ssh(tb, host, f"systemctl start ollama-check.service; cat {PROM}")
    assert ran.returncode == 0, ran.stderr
    return dict(re.findall(r"^(ollama_check_\S+) (\S+)$", ran.stdout, re.M))


def test_the_check_reports_a_healthy_host_then_a_drifted_drop_in(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    watching = inventory_with(tb, tmp_path, host, ollama_watch=True)
    try:
        run = run_deploy(watching, "--limit", host)
        assert run.rc == 0, run.stderr[-3000:]
        metrics = _check(tb, host)
        assert {k: metrics[k] for k in metrics if k.startswith("ollama_check_up")} == {
            'ollama_check_up{check="settings"}': "1", 'ollama_check_up{check="compute"}': "1",
            'ollama_check_up{check="offload"}': "1"}
        assert metrics['ollama_check_compute_info{library="cpu"}'] == "1"
        shown = ssh(tb, host, "systemd-analyze security ollama-check.service --no-pager").stdout
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", shown)
        assert score and float(score.group(1)) <= 2.0, shown[-3000:]
        suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/testinfra",
                                "--inventory", str(watching), "-k", f"check_timer and {host}"],
                               capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
        assert suite.returncode == 0 and "1 passed" in suite.stdout, suite.stdout[-2000:]
        # drift: someone edits a drop-in by hand and restarts Ollama
        ssh(tb, host, "sed -i 's/OLLAMA_NUM_PARALLEL=[0-9]*/OLLAMA_NUM_PARALLEL=1/' "
                      "/etc/systemd/system/ollama.service.d/performance.conf; systemctl daemon-reload; "
                      "systemctl restart ollama; sleep 1")
        assert _check(tb, host)['ollama_check_up{check="settings"}'] == "0"
    finally:
        back = run_deploy(tb.inventory_path, "--limit", host)
    assert back.rc == 0, back.stderr[-3000:]
    assert ssh(tb, host, "systemctl cat ollama-check.timer").returncode != 0  # switched off: removed


def test_a_gpu_host_fallen_back_to_the_cpu_is_reported_and_healed_once(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "dual_gpu")
    healing = inventory_with(tb, tmp_path, host, ollama_watch=True, ollama_watch_heal=True)
    try:
        run = run_deploy(healing, "--limit", host)
        assert run.rc == 0, run.stderr[-3000:]
        assert _check(tb, host)['ollama_check_up{check="compute"}'] == "1"
        # Suspend/resume loses the GPU: Ollama restarts on the CPU ...
        ssh(tb, host, "mkdir -p /run/nvidia-smi-replay && touch /run/nvidia-smi-replay/fail && "
                      "systemctl restart ollama && sleep 1")
        # ... and the driver comes back (what reloading nvidia_uvm does on real hardware)
        ssh(tb, host, "rm -f /run/nvidia-smi-replay/fail")
        first = _check(tb, host)
        assert first['ollama_check_up{check="compute"}'] == "0" and first["ollama_check_healed"] == "1"
        assert "reloading nvidia_uvm, restarting Ollama" in ssh(tb, host, "journalctl -u ollama-check -o cat").stdout
        ssh(tb, host, "sleep 2")
        second = _check(tb, host)
        assert second['ollama_check_up{check="compute"}'] == "1" and second['ollama_check_compute_info{library="CUDA"}']
    finally:
        ssh(tb, host, "rm -f /run/nvidia-smi-replay/fail /run/ollama-check/healed")
        back = run_deploy(tb.inventory_path, "--limit", host)
    assert back.rc == 0, back.stderr[-3000:]
