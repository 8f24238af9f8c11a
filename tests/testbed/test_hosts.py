"""Each testbed host is a real systemd machine reachable over SSH, with its simulated hardware."""
import json
import runpy
import subprocess
import sys

import pytest

from testbed.container import HARDWARE_DIR, nspawn_pid
from testbed.layout import PROJECT_ROOT, Testbed

HOSTS = [h.name for h in Testbed.named().hosts]
PROFILE = {h.name: h.profile for h in Testbed.named().hosts}


@pytest.mark.parametrize("name", HOSTS)
def test_pid1_is_systemd_and_system_is_running(hosts, name):
    h = hosts[name]
    assert h.file("/proc/1/comm").content_string.strip() == "systemd"
    assert h.run("systemctl is-system-running").stdout.strip() == "running"
    assert h.check_output("hostname") == name


@pytest.mark.parametrize("name", HOSTS)
def test_each_host_has_its_own_network_namespace(testbed, hosts, name):
    tb, _ = testbed
    addr = hosts[name].check_output("ip -4 -o addr show dev eth0")
    assert f" {tb.host(name).ip}/" in addr
    # Another host's address is not configured here: the namespaces are really separate.
    others = [h.ip for h in tb.hosts if h.name != name]
    assert not any(f" {ip}/" in addr for ip in others)


@pytest.mark.parametrize("name", HOSTS)
def test_simulated_gpus_match_the_recording(hosts, name):
    h = hosts[name]
    recording = HARDWARE_DIR / "profiles" / PROFILE[name] / "gpus.json"
    if not recording.exists():
        assert not h.exists("nvidia-smi"), "a CPU-only host must not have nvidia-smi"
        return
    gpus = json.loads(recording.read_text())["gpus"]
    out = h.check_output("nvidia-smi --query-gpu=index,name,pci.bus_id --format=csv,noheader")
    rows = [[c.strip() for c in line.split(",")] for line in out.splitlines()]
    assert rows == [[str(g["index"]), g["name"], g["pci.bus_id"]] for g in gpus]


def test_inventory_groups_hosts_by_profile_and_simulates_recorded_machines(testbed):
    tb, _ = testbed
    inv = runpy.run_path(str(tb.inventory_path))
    groups = {k: v for k, v in inv.items() if k in ("cpu_xeon", "dual_gpu", "dgx_spark")}
    assert {p: [n for n, _ in hs] for p, hs in groups.items()} == \
        {h.profile: [h.name] for h in tb.hosts}
    for profile, hosts in groups.items():
        recorded = HARDWARE_DIR / "profiles" / profile / "hardware.json"
        machine = json.loads(recorded.read_text())
        override = hosts[0][1].get("facts_override")
        if machine.get("physical_cores") is None:  # dual_gpu: the seed did not record CPU or RAM
            assert override is None
            continue
        assert override["arch"] == machine["arch"] and override["threads"] == machine["threads"]
        assert override["mem_total_mib"] == machine["mem_total_mib"]
    assert groups["dgx_spark"][0][1]["facts_override"]["arch"] == "aarch64"
    assert groups["cpu_xeon"][0][1]["facts_override"]["threads"] == 24


def test_pyinfra_reaches_every_host_with_the_generated_inventory(testbed):
    tb, _ = testbed
    p = subprocess.run([sys.executable, "-m", "pyinfra", "-y", str(tb.inventory_path), "fact", "server.Hostname"],
                       capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    facts = json.loads(p.stderr[p.stderr.index("{"):p.stderr.rindex("}") + 1])
    assert facts == {h.name: h.name for h in tb.hosts}  # each host answered with its own hostname


def test_up_twice_boots_nothing_new(testbed):
    from testbed import core
    tb, _ = testbed
    pids = {h.name: nspawn_pid(h) for h in tb.hosts}
    again = core.up(tb)
    assert [h["booted"] for h in again["hosts"]] == [False] * len(tb.hosts)
    assert {h.name: nspawn_pid(h) for h in tb.hosts} == pids
