"""The state a deploy must leave on every host, checked over SSH against the inventory's intent.

    pytest tests/testinfra --inventory inventory/prod.py
"""
import ipaddress
import json
import shlex

from ollama_deploy.control.release import artifact_for
from ollama_deploy.facts.ollama import RELEASE_MARKER
from ollama_deploy.gocompat.names import canonical_model
from ollama_deploy.lib.checks import listens_on_loopback
from ollama_deploy.lib.dropins import DROPIN_DIR, DROPIN_FILES, dropins
from ollama_deploy.lib.settings import selected_models
from ollama_deploy.tasks.configure import render_dropin
from ollama_deploy.tasks.smoke import generating_model, smoke_candidates

API = "http://127.0.0.1:11434"


def _show(target, prop):
    return target.host.check_output(f"systemctl show ollama.service -p {prop} --value")


def test_pinned_release_is_installed(target):
    h, s = target.host, target.settings
    arch = (target.data.get("facts_override") or {}).get("arch") or h.check_output("uname -m")
    marker = h.file(f"{s.ollama_prefix}/{RELEASE_MARKER}")
    assert marker.exists and marker.content_string.strip() == artifact_for(s, arch).sha256
    version = h.run(f"{s.ollama_prefix}/bin/ollama --version")
    assert f"ollama version is {s.ollama_version}" in version.stdout


def test_ollama_user_and_group(target):
    h = target.host
    user = h.user("ollama")
    assert user.exists and user.group == "ollama" and user.home == "/usr/share/ollama"
    assert user.shell == "/bin/false" and user.uid < 1000  # a system account
    for gpu_group in ("render", "video"):
        if h.group(gpu_group).exists:
            assert gpu_group in user.groups
    # `ollama serve` writes its keypair under ~/.ollama first, and exits when it cannot.
    for directory in ("/usr/share/ollama", "/usr/share/ollama/.ollama", target.settings.ollama_models_dir):
        d = h.file(directory)
        assert d.is_directory and (d.user, d.group, d.mode) == ("ollama", "ollama", 0o755), directory
    key = h.file("/usr/share/ollama/.ollama/id_ed25519")
    assert key.is_file and key.user == "ollama" and key.mode == 0o600


def test_unit_enabled_and_running(target):
    svc = target.host.service("ollama")
    assert svc.is_enabled and svc.is_running


def test_dropins_have_exactly_the_intended_content(target):
    wanted = dropins(target.settings)
    for file_name in DROPIN_FILES:
        f = target.host.file(f"{DROPIN_DIR}/{file_name}")
        if file_name in wanted:
            assert f.content_string == render_dropin(file_name, wanted[file_name]), file_name
            assert (f.user, f.group, f.mode) == ("root", "root", 0o644)
        else:
            assert not f.exists, f"{file_name} should have been removed"


def test_systemd_sees_the_intended_environment_and_limits(target):
    wanted = dropins(target.settings)
    environment = _show(target, "Environment").split()
    for lines in wanted.values():
        for line in lines:
            if line.directive == "Environment":
                assert line.value in environment
    limits = {line.directive: line.value for lines in wanted.values() for line in lines}
    if "CPUQuota" in limits:
        percent = int(limits["CPUQuota"].rstrip("%"))
        quota_s = percent / 100  # systemd shows CPU time per second of wall time
        assert _show(target, "CPUQuotaPerSecUSec") == (f"{quota_s:g}s" if quota_s >= 1 else f"{percent * 10}ms")
    if "MemoryMax" in limits:
        value = limits["MemoryMax"]
        factor = 1024 ** ("KMGT".index(value[-1]) + 1)
        assert _show(target, "MemoryMax") == str(int(value[:-1]) * factor)


def listening_addresses(h, port: int) -> set[str]:
    """Addresses listening on TCP `port`, from /proc/net/tcp and tcp6 (a bare host has no ss or
    netstat). The kernel prints each 32-bit word of an address in host (little-endian) order."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in h.check_output(f"cat /proc/net/{table} 2>/dev/null || true").splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                found.add(str(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))))
    return found


def test_api_listens_on_loopback_unless_exposed_behind_the_allowlist(target):
    h, s = target.host, target.settings
    if listens_on_loopback(s.ollama_host):
        assert listening_addresses(h, 11434) == {"127.0.0.1"}
        assert not h.file("/etc/ollama-deploy/firewall.nft").exists
        return
    rules = h.check_output("nft list table inet ollama_deploy")  # loaded, not just written
    for network in s.ollama_allowed_networks:
        assert network.removesuffix("/32") in rules
    assert "drop" in rules and h.service("ollama-firewall").is_enabled


def test_selected_models_are_present(target):
    listed = target.host.check_output(f"OLLAMA_HOST={API} {target.settings.ollama_prefix}/bin/ollama list")
    names = {canonical_model(line.split()[0]) for line in listed.splitlines()[1:] if line.strip()}
    assert {canonical_model(m) for m in selected_models(target.settings)} <= names


# Project standard: 1.1 on CPU hosts, 1.2 where the unit must reach NVIDIA devices. NixOS's
# services.ollama scores 1.4, install.sh's unit 9.2.
MAX_EXPOSURE = {"cpu": 1.1, "gpu": 1.2}


def test_unit_sandbox_exposure_is_at_most_the_standard(target):
    h, s = target.host, target.settings
    # Scored while Ollama serves and has just loaded a model and generated under this sandbox.
    model, _ = generating_model(smoke_candidates(s), lambda m: json.loads(
        h.check_output(f"curl -sS {API}/api/show -d {shlex.quote(json.dumps({'model': m}))}")).get("capabilities", []))
    if model:
        body = json.dumps({"model": model, "prompt": "hi", "stream": False, "options": {"num_predict": 2}})
        assert json.loads(h.check_output(f"curl -fsS {API}/api/generate -d {shlex.quote(body)}"))["done"]
    assert h.service("ollama").is_running
    out = h.check_output("systemd-analyze security ollama.service --no-pager")
    overall = [line for line in out.splitlines() if "Overall exposure level" in line][-1]
    score = float(overall.split(":")[1].split()[0])
    gpu = h.exists("nvidia-smi") or s.ollama_cuda_visible_devices
    assert score <= MAX_EXPOSURE["gpu" if gpu else "cpu"], overall


def test_files_are_owned_right_and_nothing_is_world_writable(target):
    h, s = target.host, target.settings
    models = h.file(s.ollama_models_dir)
    assert models.is_directory and models.user == "ollama"
    unit = h.file("/etc/systemd/system/ollama.service")
    assert (unit.user, unit.group, unit.mode) == ("root", "root", 0o644)
    paths = f"/usr/share/ollama {s.ollama_models_dir} {DROPIN_DIR} {s.ollama_prefix}/lib/ollama"
    assert h.check_output(f"find {paths} -perm -o+w ! -type l 2>/dev/null") == ""


def test_resume_hook_present_only_where_asked(target):
    hook = target.host.file("/usr/lib/systemd/system-sleep/ollama-nvidia-uvm")
    if target.settings.ollama_resume_fix:
        assert hook.exists and hook.mode == 0o755 and hook.user == "root"
    else:
        assert not hook.exists


def test_the_check_timer_and_its_metrics_when_watching(target):
    h, s = target.host, target.settings
    timer = h.service("ollama-check.timer")
    if not s.ollama_watch:
        assert not h.file("/etc/systemd/system/ollama-check.timer").exists
        return
    assert timer.is_enabled and timer.is_running
    assert h.file("/etc/systemd/system/ollama-check.service").exists
    h.check_output("systemctl start ollama-check.service")  # one run now, as the timer would
    metrics = h.file("/var/lib/prometheus/node-exporter/ollama_check.prom")
    assert metrics.mode == 0o644 and 'ollama_check_up{check="settings"} 1' in metrics.content_string
