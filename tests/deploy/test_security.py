"""Exposure needs an allowlist that nftables enforces; a bad artifact never replaces a serving binary."""
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from testbed.deployrun import PROJECT_ROOT, run_deploy
from tests.deploy.hosts import inventory_with, ssh


def _reaches(url):
    try:
        return urllib.request.urlopen(url, timeout=3).status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def exposed_host(deploy_testbed, first_run):
    host = next(h for h in deploy_testbed.hosts if h.profile == "dual_gpu")
    yield host
    back = run_deploy(deploy_testbed.inventory_path, "--limit", host.name)  # back to loopback only
    assert back.rc == 0, back.stderr[-2000:]


def test_exposure_admits_only_the_allowlist(deploy_testbed, exposed_host, tmp_path):
    tb, host = deploy_testbed, exposed_host
    url = f"http://{host.ip}:11434/api/version"
    assert not _reaches(url)  # loopback only by default
    ours = inventory_with(tb, tmp_path, host.name, ollama_host="0.0.0.0:11434",
                      ollama_allowed_networks=[f"{tb.gateway}/32"])  # this control node
    run = run_deploy(ours, "--limit", host.name)
    assert run.rc == 0, run.stderr[-3000:]
    assert _reaches(url)
    assert "ip saddr " + tb.gateway in ssh(tb, host.name, "nft list table inet ollama_deploy").stdout
    others = inventory_with(tb, tmp_path, host.name, ollama_host="0.0.0.0:11434",
                        ollama_allowed_networks=["192.0.2.0/24"])  # a documentation network: not us
    run = run_deploy(others, "--limit", host.name)
    assert run.rc == 0, run.stderr[-3000:]
    assert not _reaches(url)  # dropped by the firewall, although Ollama listens on all addresses
    assert "0.0.0.0:11434" in ssh(tb, host.name, "ss -ltn").stdout


def test_checksum_mismatch_keeps_the_old_binary_serving(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    marker = "/usr/local/lib/ollama/.ollama-deploy-release"
    before = ssh(tb, host, f"cat {marker}; sha256sum /usr/local/bin/ollama").stdout
    bad = inventory_with(tb, tmp_path, host, ollama_release_sha256={"ollama-linux-amd64.tar.zst": "0" * 64})
    run = run_deploy(bad)
    assert run.rc != 0
    assert run.results["failed_hosts"] == [host]  # the other hosts went on
    assert f"sha256 mismatch for {tb.release_base_url}/v0.32.15/ollama-linux-amd64.tar.zst" in run.stderr
    assert ssh(tb, host, f"cat {marker}; sha256sum /usr/local/bin/ollama").stdout == before
    assert '"version"' in ssh(tb, host, "curl -fsS 127.0.0.1:11434/api/version").stdout


@pytest.mark.parametrize("profile", ["cpu_xeon", "dgx_spark"])  # real Ollama, and the double
def test_crash_loop_after_a_change_is_caught_and_rolled_back(deploy_testbed, first_run, tmp_path, profile):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == profile).name
    # A listen address another program holds: it passes validation, then Ollama crash-loops.
    ssh(tb, host, "systemd-run --quiet --unit=port-squatter python3 -m http.server 11600 --bind 127.0.0.1")
    bad = inventory_with(tb, tmp_path, host, ollama_host="127.0.0.1:11600")
    try:
        run = run_deploy(bad, "--limit", host)
    finally:
        ssh(tb, host, "systemctl stop port-squatter")
    assert run.rc != 0
    assert f"{host}: Ollama does not serve after the change (crash loop: restarted" in run.stderr
    assert "last journal lines:" in run.stderr
    assert "rolled back to the last good configuration, which serves again" in run.stderr
    assert '"version"' in ssh(tb, host, "curl -fsS 127.0.0.1:11434/api/version").stdout
    assert "OLLAMA_HOST" not in ssh(tb, host, "cat /etc/systemd/system/ollama.service.d/listen.conf").stdout
    again = run_deploy(tb.inventory_path, "--limit", host)  # the good configuration is what is live
    assert again.rc == 0 and again.changed_ops() == []


def test_failed_verify_after_a_change_rolls_back(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "dual_gpu").name
    # cuda_v13 does not drive Pascal (compute 6.1) GPUs: Ollama serves, but on the CPU.
    bad = inventory_with(tb, tmp_path, host, ollama_llm_library="cuda_v13")
    run = run_deploy(bad, "--limit", host)
    assert run.rc != 0
    assert f"{host}: verify failed: inference compute: want CUDA" in run.stderr
    assert "rolled back to the last good configuration, which serves again" in run.stderr
    assert "OLLAMA_LLM_LIBRARY" not in ssh(tb, host, "cat /etc/systemd/system/ollama.service.d/*.conf").stdout


def test_vulkan_on_an_nvidia_host_is_a_degradation_verify_fails(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "dual_gpu").name
    # The amd64 release ships lib/ollama/vulkan, which drives NVIDIA cards too, slower than CUDA.
    run = run_deploy(inventory_with(tb, tmp_path, host, ollama_llm_library="vulkan"), "--limit", host)
    assert run.rc != 0
    assert f"{host}: verify failed: inference compute: want CUDA, seen Vulkan" in run.stderr
    assert "Ollama runs the NVIDIA GPU through Vulkan, not CUDA: OLLAMA_LLM_LIBRARY=vulkan" in run.stderr
    assert "rolled back to the last good configuration, which serves again" in run.stderr


@pytest.mark.parametrize("kill_at", [0.25, 0.5])
def test_deploy_killed_mid_run_converges_on_the_next_run(deploy_testbed, first_run, kill_at):
    import os
    import signal
    import sys
    import time

    from testbed.layout import PROJECT_ROOT
    tb = deploy_testbed
    change = ["--data", f"ollama_keep_alive={int(kill_at * 100)}m"]
    p = subprocess.Popen([sys.executable, "-m", "pyinfra", "-y", str(tb.inventory_path), "deploy.py", *change],
                         cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    # At a share of a whole converge measured here (a fixed delay outlives a fast run).
    time.sleep(kill_at * first_run.seconds)
    assert p.poll() is None, f"the deploy ended within {kill_at * first_run.seconds:.1f} s, before the kill"
    os.killpg(p.pid, signal.SIGKILL)  # the control node dies mid-run
    p.wait()
    for h in tb.hosts:  # whatever systemd can read is whole: each drop-in ends with its last line
        out = ssh(tb, h.name, "for f in /etc/systemd/system/ollama.service.d/*.conf; do tail -c1 $f | od -c | "
                               "head -1; done").stdout
        assert all(line.rstrip().endswith("\\n") for line in out.splitlines() if line.strip()), out
    run = run_deploy(tb.inventory_path, *change)
    assert run.rc == 0, run.stderr[-3000:]
    again = run_deploy(tb.inventory_path, *change)
    assert again.rc == 0 and again.changed_ops() == []
    for h in tb.hosts:
        models = ssh(tb, h.name, "ollama list").stdout.splitlines()[1:]
        assert len(models) == len({m.split()[0] for m in models})  # no duplicate models
    assert run_deploy(tb.inventory_path).rc == 0  # back to the inventory's own settings for later tests


def test_resume_hook_restarts_ollama_on_gpu_hosts_only(deploy_testbed, first_run):
    tb = deploy_testbed
    hook = "/usr/lib/systemd/system-sleep/ollama-nvidia-uvm"
    for h in tb.hosts:
        present = ssh(tb, h.name, f"stat -c %a {hook}").stdout.strip()
        assert present == ("755" if h.profile == "dual_gpu" else ""), h.name
    gpu = next(h for h in tb.hosts if h.profile == "dual_gpu").name
    pid = ssh(tb, gpu, "systemctl show -p MainPID --value ollama").stdout
    ssh(tb, gpu, f"{hook} pre && {hook} post")  # what systemd-sleep runs around a suspend
    assert ssh(tb, gpu, "systemctl show -p MainPID --value ollama").stdout != pid
    assert ssh(tb, gpu, "for i in $(seq 50); do curl -fsS 127.0.0.1:11434/api/version && break; sleep 0.1; "
                         "done").stdout.startswith('{"version"')


def test_full_disk_is_refused_naming_the_models_dir_and_nothing_is_lost(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "dual_gpu").name  # pulls testbed/tiny, then testbed/small
    small = "/srv/models-small"
    ssh(tb, host, f"mkdir -p {small} && mount -t tmpfs -o size=4m tmpfs {small}")  # room for tiny only
    try:
        run = run_deploy(inventory_with(tb, tmp_path, host, ollama_models_dir=small), "--limit", host)
        assert run.rc != 0
        assert f"not enough space for testbed/small in {small}: needs 7 MiB" in run.stderr
        assert "MiB free; nothing was removed" in run.stderr
        assert "testbed/tiny:latest" in ssh(tb, host, "ollama list").stdout  # pulled first, still there
    finally:
        ssh(tb, host, f"systemctl stop ollama; umount {small}")
        assert run_deploy(tb.inventory_path, "--limit", host).rc == 0


def test_interrupted_pull_resumes_from_the_partial_download(deploy_testbed, first_run):
    tb = deploy_testbed
    # The double's resume (a bare <blob>-partial file); real Ollama also keeps -partial-N part records,
    # so a partial file made by curl alone is not how it resumes.
    host = next(h for h in tb.hosts if h.profile == "dual_gpu")
    manifest = (tb.mirror_root / "v2/testbed/tiny/manifests/latest").read_text()
    layer = next(x for x in json.loads(manifest)["layers"] if x["mediaType"].endswith("image.model"))
    blob = f"/usr/share/ollama/.ollama/models/blobs/{layer['digest'].replace(':', '-')}"
    url = f"{tb.mirror_url}/v2/testbed/tiny/blobs/{layer['digest']}"
    # As if the network dropped mid-pull: the model is gone and half its blob sits in the partial file.
    ssh(tb, host.name, f"ollama rm testbed/tiny && curl -fsS -r 0-999999 -o {blob}-partial {url} && "
                        f"chown ollama:ollama {blob}-partial")
    log = tb.state_dir / "mirror-access.log"
    before = len(log.read_text().splitlines())
    run = run_deploy(tb.inventory_path, "--limit", host.name)
    assert run.rc == 0, run.stderr[-3000:]
    fetched = [line for line in log.read_text().splitlines()[before:] if layer["digest"] in line]
    assert fetched and all(" 206 bytes=" in line for line in fetched)  # only the rest was fetched
    assert ssh(tb, host.name, f"sha256sum {blob}").stdout.split()[0] == layer["digest"].split(":")[1]


def test_mirror_token_is_sent_but_never_shown_or_left_behind(deploy_testbed, first_run):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon")
    token = "tok-" + os.urandom(8).hex()
    ssh(tb, host.name, "rm /usr/local/lib/ollama/.ollama-deploy-release")  # force a download
    log = tb.state_dir / "mirror-access.log"
    before = len(log.read_text().splitlines())
    run = run_deploy(tb.inventory_path, "--limit", host.name, "-vvv", env={"OLLAMA_DEPLOY_MIRROR_TOKEN": token})
    assert run.rc == 0, run.stderr[-3000:]
    assert token not in run.stderr + json.dumps(run.results)  # not even with every command printed
    downloads = [line for line in log.read_text().splitlines()[before:] if "ollama-linux-amd64.tar.zst" in line]
    assert downloads and all(line.endswith(" 200 auth") for line in downloads)
    left = ssh(tb, host.name, f"grep -rl {token} /var/cache/ollama-deploy /tmp /root 2>/dev/null").stdout
    assert left == ""


def test_failed_smoke_after_a_change_rolls_back(deploy_testbed, first_run, tmp_path):
    tb = deploy_testbed
    host = next(h for h in tb.hosts if h.profile == "cpu_xeon").name
    conf = "/etc/systemd/system/ollama.service.d/performance.conf"
    before = ssh(tb, host, f"cat {conf}").stdout
    # The change (keep-alive) applies and Ollama serves, but the smoke generate fails.
    bad = inventory_with(tb, tmp_path, host, ollama_keep_alive="45m", ollama_smoke_model="testbed/absent")
    run = run_deploy(bad, "--limit", host)
    assert run.rc != 0
    assert f"{host}: smoke generate with testbed/absent failed: HTTP 404" in run.stderr
    assert "rolled back to the last good configuration, which serves again" in run.stderr
    assert ssh(tb, host, f"cat {conf}").stdout == before
    assert "OLLAMA_KEEP_ALIVE=45m" not in ssh(tb, host, "systemctl show -p Environment ollama").stdout


def test_a_deploy_over_a_non_root_ssh_user_with_sudo(deploy_testbed, first_run, tmp_path):
    """pyinfra's _sudo for the operations and facts, and for the checks the deploy runs itself (the
    API wait, the smoke's journal-free path, verify's journalctl and systemd-analyze)."""
    tb = deploy_testbed
    host = next(h.name for h in tb.hosts if h.profile == "cpu_xeon")
    made = ssh(tb, host, "id deployer >/dev/null 2>&1 || useradd -m -s /bin/sh deployer; "
                         "install -d -o deployer -g deployer -m 700 /home/deployer/.ssh; "
                         "install -o deployer -g deployer -m 600 /root/.ssh/authorized_keys /home/deployer/.ssh/; "
                         "echo 'deployer ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deployer; "
                         "chmod 440 /etc/sudoers.d/deployer")
    assert made.returncode == 0, made.stderr
    conf = "/etc/systemd/system/ollama.service.d/performance.conf"
    try:
        run = run_deploy(inventory_with(tb, tmp_path, host, ssh_user="deployer", _sudo=True,
                                        ollama_keep_alive="2h"), "--limit", host)
        assert run.rc == 0, run.stderr[-3000:]
        assert ("Configure Ollama | Drop-ins", host) in run.changed_ops()
        assert 'OLLAMA_KEEP_ALIVE=2h' in ssh(tb, host, f"cat {conf}").stdout
        assert ssh(tb, host, f"stat -c %U {conf}").stdout.strip() == "root"
        report = json.loads((PROJECT_ROOT / "reports/verify" / f"{host}.json").read_text())
        assert report["ok"] and report["exposure"] is not None  # journalctl and systemd-analyze ran as root
    finally:
        back = run_deploy(tb.inventory_path, "--limit", host)
        ssh(tb, host, "userdel -r deployer; rm -f /etc/sudoers.d/deployer")
    assert back.rc == 0, back.stderr[-3000:]
