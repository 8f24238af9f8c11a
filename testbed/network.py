"""Network plumbing: one bridge per testbed on the control node, one network namespace per host.

Each host gets its own namespace (so every host's Ollama can bind 127.0.0.1:11434 like on a real
machine) joined to the bridge by a veth pair. Traffic never leaves this machine.

Example:
    ensure_bridge(tb); ensure_host_netns(host)      # idempotent
    remove_host_netns(host); remove_bridge(tb)      # idempotent
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from .layout import Host, Testbed, TestbedError


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise TestbedError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def ensure_bridge(tb: Testbed) -> None:
    if not _link_exists(tb.bridge):
        _ip("link", "add", tb.bridge, "type", "bridge")
    addr = f"{tb.gateway}/{tb.subnet.prefixlen}"
    if addr not in _ip("-o", "addr", "show", "dev", tb.bridge).stdout:
        _ip("addr", "add", addr, "dev", tb.bridge)
    _ip("link", "set", tb.bridge, "up")


def remove_bridge(tb: Testbed) -> None:
    if _link_exists(tb.bridge):
        _ip("link", "del", tb.bridge)


def ensure_host_netns(host: Host) -> None:
    """Namespace with lo up and eth0 = host's address, its peer enslaved to the bridge."""
    tb = host.testbed
    if not netns_exists(host.netns):
        _ip("netns", "add", host.netns)
    inside = ["-n", host.netns]
    if _ip(*inside, "link", "show", "eth0", check=False).returncode != 0:
        _ip("link", "del", host.veth, check=False)  # a stale peer from an interrupted run
        _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        _ip(*inside, "addr", "add", f"{host.ip}/{tb.subnet.prefixlen}", "dev", "eth0")
    _ip("link", "set", host.veth, "master", tb.bridge, "up")
    # systemd in a container joined to an existing namespace does not bring lo up itself.
    _ip(*inside, "link", "set", "lo", "up")
    _ip(*inside, "link", "set", "eth0", "up")
    if "default" not in _ip(*inside, "route", "show").stdout:
        _ip(*inside, "route", "add", "default", "via", tb.gateway)


def remove_host_netns(host: Host) -> None:
    if netns_exists(host.netns):
        _ip("netns", "del", host.netns)  # deleting the namespace deletes the veth pair with it
    _ip("link", "del", host.veth, check=False)


HOSTS_FILE = Path("/etc/hosts")


def _names_block(tb: Testbed) -> tuple[str, str]:
    return f"# ollama-testbed {tb.name} begin\n", f"# ollama-testbed {tb.name} end\n"


def _without_names(text: str, tb: Testbed) -> str:
    begin, end = _names_block(tb)
    if begin not in text:
        return text
    head, _, rest = text.partition(begin)
    return head + rest.partition(end)[2]


def ensure_site_names(tb: Testbed) -> None:
    """The control node resolves the site registries by name, as a site's DNS answers for them (the
    loader connects by the name their certificates carry); a marked block of /etc/hosts, removed at down."""
    text = HOSTS_FILE.read_text() if HOSTS_FILE.exists() else ""
    begin, end = _names_block(tb)
    block = begin + "".join(f"{r.ip}\t{r.name}\n" for r in tb.registry_hosts) + end if tb.registry_hosts else ""
    wanted = _without_names(text, tb) + block
    if wanted != text:
        HOSTS_FILE.write_text(wanted)


def remove_site_names(tb: Testbed) -> None:
    if HOSTS_FILE.exists() and _names_block(tb)[0] in HOSTS_FILE.read_text():
        HOSTS_FILE.write_text(_without_names(HOSTS_FILE.read_text(), tb))


def has_site_names(tb: Testbed) -> bool:
    return HOSTS_FILE.exists() and _names_block(tb)[0] in HOSTS_FILE.read_text()


def testbed_namespaces(tb: Testbed) -> list[str]:
    """Every namespace this testbed may have made, also for hosts beyond its current size."""
    prefix = f"{tb.name}-"
    return sorted(p.name for p in Path("/run/netns").glob(prefix + "*")) if Path("/run/netns").exists() else []
